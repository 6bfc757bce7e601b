// Package testutil holds the real-server harnesses and small helpers that
// every hashgate module's tests share.
//
// # What it provides
//
//   - FreePort: a TCP port in [20000, 32767] that 127.0.0.1 can bind right
//     now. Ports from 32768 up are the machine's ephemeral range and are
//     never handed out, and no port is handed out twice in one process.
//   - Eventually: poll a condition every 10 ms until it holds or a timeout
//     expires; tests wait this way instead of sleeping.
//   - StartBtcd: a real btcd (v0.24.2) process on regtest with its own data
//     directory, RPC and P2P ports, a noderpc.Client, and a private key that
//     receives every coinbase it mines. SpendMatureCoinbases turns those
//     coinbases into real, signed segwit mempool transactions.
//   - StartNATS and StartNATSOnPort: an embedded nats-server, optionally with
//     JetStream and user/password authentication, that can be restarted on
//     the same port to test reconnection.
//   - LiveHeap: the live heap after two collections, for tests that report
//     bytes per session or per miner.
//
// # What it does not do
//
// It never skips a test because a dependency is missing: a missing btcd
// binary fails the test with instructions, so CI cannot go green by
// accident. It does not start Bitcoin Core; btcd is the node used in tests
// (see DESIGN.md §4).
//
// # Lifetimes and concurrency
//
// Every process and server started here is stopped by a t.Cleanup
// registered on the testing.TB that started it, and its files live under
// that test's t.TempDir. The harness methods that take a testing.TB report
// failures with require and so must be called from the test's own
// goroutine. FreePort is safe for concurrent use. A Btcd's methods may be
// called from several goroutines, but SpendMatureCoinbases calls are
// serialised internally.
//
// # btcd regtest facts the harness relies on
//
//   - Coinbase outputs mature after 100 blocks.
//   - Segwit is not active from genesis as on Bitcoin Core: it activates
//     through BIP 9 signalling, so blocks at height 432 and above enforce it
//     and the mempool accepts witness spends once the tip is at height 431.
//     SpendMatureCoinbases mines up to that height when needed.
//   - The block subsidy halves every 150 blocks.
package testutil
