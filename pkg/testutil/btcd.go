package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/noderpc"
)

// BtcdEnv names the environment variable that overrides the btcd binary.
const BtcdEnv = "HASHGATE_BTCD"

// btcdMissing is the failure message when no btcd binary can be found.
const btcdMissing = `btcd not found: run "go install github.com/btcsuite/btcd@v0.24.2" (or make deps)`

// Harness timings.
const (
	btcdStartTimeout = 30 * time.Second // until getblockcount answers
	btcdStopTimeout  = 10 * time.Second // SIGTERM grace before SIGKILL
	btcdCallTimeout  = 60 * time.Second // per harness RPC call
	btcdStartTries   = 3                // port collisions are retried
	logTailBytes     = 8 << 10          // how much of the log a failure prints
)

// BtcdPath returns the btcd binary to run: $HASHGATE_BTCD if set, else btcd
// from PATH, else btcd in $GOBIN, in each $GOPATH/bin, or in ~/go/bin. If
// none exists the test fails (it is never skipped).
func BtcdPath(t testing.TB) string {
	t.Helper()
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, dir := range filepath.SplitList(os.Getenv("GOPATH")) {
		if dir != "" {
			dirs = append(dirs, filepath.Join(dir, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return findBinary(t, BtcdEnv, "btcd", dirs, btcdMissing)
}

// findBinary returns the program to run: $env if set (it must be
// executable), else name from PATH, else name in one of dirs. If none
// exists the test fails with missing (it is never skipped).
func findBinary(t testing.TB, env, name string, dirs []string, missing string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if isExecutable(p) {
			return p
		}
		t.Fatalf("%s=%q is not an executable file; %s", env, p, missing)
		return ""
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range dirs {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	t.Fatalf("%s", missing)
	return ""
}

// isExecutable reports whether path is a regular file with an execute bit.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// BtcdOptions configures StartBtcd. The zero value is a lone node whose
// coinbases pay to a fresh key.
type BtcdOptions struct {
	// Key receives the coinbases when MiningAddr is nil; nil means a new
	// random key. It becomes Btcd.Key.
	Key *btcec.PrivateKey
	// MiningAddr is btcd's --miningaddr. Nil means the P2WPKH address of
	// Key. SpendMatureCoinbases only works when it is Key's P2WPKH address.
	MiningAddr btcutil.Address
	// ConnectTo lists P2P addresses (host:port, e.g. another Btcd's P2PAddr)
	// passed as --addpeer.
	ConnectTo []string
	// ExtraArgs are appended to btcd's command line.
	ExtraArgs []string
}

// Btcd is a running btcd regtest node started by StartBtcd. Its exported
// fields are read-only. Methods are safe for concurrent use, except that
// Stop and Restart must not race with each other.
type Btcd struct {
	// RPCAddr is the RPC listener, "127.0.0.1:port" (plain HTTP).
	RPCAddr string
	// RPCUser and RPCPass are the RPC credentials.
	RPCUser, RPCPass string
	// P2PAddr is the P2P listener, "127.0.0.1:port".
	P2PAddr string
	// DataDir is the node's working directory: data/, logs/ and btcd.log
	// (stdout and stderr) live here.
	DataDir string
	// Client talks to this node's RPC server.
	Client *noderpc.Client
	// Key is the private key behind MiningAddr (when MiningAddr was not
	// overridden).
	Key *btcec.PrivateKey
	// MiningAddr is where generated blocks pay their coinbase.
	MiningAddr btcutil.Address

	path    string   // binary
	args    []string // command line without the port flags
	logPath string   // stdout/stderr of the process

	mu      sync.Mutex // guards cmd, exited, running
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been reaped
	running bool

	spendMu sync.Mutex // serialises SpendMatureCoinbases
	wallet  coinbaseWallet
}

// StartBtcd starts btcd on regtest with fresh ports and a fresh data
// directory under t.TempDir, waits up to 30 s for its RPC server to answer
// getblockcount, and registers a t.Cleanup that stops it. On failure it
// prints the tail of btcd's log and fails the test.
func StartBtcd(t testing.TB, opts BtcdOptions) *Btcd {
	t.Helper()
	path := BtcdPath(t)
	dir := t.TempDir()

	key := opts.Key
	if key == nil {
		var err error
		key, err = btcec.NewPrivateKey()
		require.NoError(t, err)
	}
	miningAddr := opts.MiningAddr
	if miningAddr == nil {
		var err error
		miningAddr, err = p2wpkhAddress(key)
		require.NoError(t, err)
	}

	b := &Btcd{
		RPCUser:    "hashgate-" + randomHex(t, 4),
		RPCPass:    randomHex(t, 16),
		DataDir:    dir,
		Key:        key,
		MiningAddr: miningAddr,
		path:       path,
		logPath:    filepath.Join(dir, "btcd.log"),
	}
	b.args = []string{
		"--regtest",
		"--notls",
		"--rpcuser=" + b.RPCUser,
		"--rpcpass=" + b.RPCPass,
		"--datadir=" + filepath.Join(dir, "data"),
		"--logdir=" + filepath.Join(dir, "logs"),
		"--miningaddr=" + miningAddr.EncodeAddress(),
		"--debuglevel=info",
		"--nodnsseed",
		"--rpcmaxclients=64",
		"--utxocachemaxsize=16", // MiB; the 250 MiB default is preallocated
	}
	for _, peer := range opts.ConnectTo {
		b.args = append(b.args, "--addpeer="+peer)
	}
	b.args = append(b.args, opts.ExtraArgs...)

	t.Cleanup(func() { b.Stop(t) })

	var lastErr error
	for try := 1; try <= btcdStartTries; try++ {
		b.RPCAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		b.P2PAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		lastErr = b.start(t)
		if lastErr == nil {
			return b
		}
		if !strings.Contains(b.logTail(), "address already in use") {
			break
		}
		t.Logf("btcd: port collision on try %d, retrying with new ports", try)
	}
	t.Logf("btcd log tail (%s):\n%s", b.logPath, b.logTail())
	t.Fatalf("start btcd: %v", lastErr)
	return nil
}

// start launches the process on b's current ports and waits for its RPC
// server. It returns an error (after reaping the process) if btcd exits or
// does not answer in time.
func (b *Btcd) start(t testing.TB) error {
	t.Helper()
	client, err := noderpc.New(noderpc.Options{
		URL:      "http://" + b.RPCAddr,
		User:     b.RPCUser,
		Password: b.RPCPass,
		Timeout:  btcdCallTimeout,
	})
	if err != nil {
		return err
	}

	args := append([]string{
		"--rpclisten=" + b.RPCAddr,
		"--listen=" + b.P2PAddr,
	}, b.args...)
	p, err := startProcess(b.path, args, b.DataDir, b.logPath)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.cmd, b.exited, b.running, b.Client = p.cmd, p.exited, true, client
	b.mu.Unlock()

	// Wait for the RPC server: getblockcount answers, the process dies,
	// or the deadline passes.
	err = p.waitReady("btcd", btcdStartTimeout, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.GetBlockCount(ctx)
		return err
	})
	if err != nil {
		if _, died := err.(errExited); died {
			b.mu.Lock()
			b.running = false
			b.mu.Unlock()
		} else {
			b.Stop(t)
		}
	}
	return err
}

// Stop shuts btcd down gracefully: SIGTERM, then SIGKILL if it has not
// exited within 10 s. Calling it again, or after the process died, does
// nothing. The data directory and log are kept for Restart and post-mortems.
func (b *Btcd) Stop(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.running {
		return
	}
	b.running = false
	if b.Client != nil {
		b.Client.Close()
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(btcdStopTimeout):
		t.Logf("btcd did not exit within %s of SIGTERM; killing it", btcdStopTimeout)
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// Restart stops btcd (if running) and starts it again on the same ports,
// data directory and credentials, then waits until the RPC server answers;
// Client is replaced by a new one. It simulates a node outage as its peers
// and clients see it.
//
// btcd deletes its regtest block database on every start, so the restarted
// node is back at the genesis block with an empty mempool (a connected peer
// will sync it again). The coinbases SpendMatureCoinbases knew about are
// forgotten accordingly.
func (b *Btcd) Restart(t testing.TB) {
	t.Helper()
	b.Stop(t)
	b.spendMu.Lock()
	b.wallet = coinbaseWallet{}
	b.spendMu.Unlock()
	if err := b.start(t); err != nil {
		t.Logf("btcd log tail (%s):\n%s", b.logPath, b.logTail())
		t.Fatalf("restart btcd: %v", err)
	}
}

// Running reports whether the btcd process is up (as far as the harness
// knows: started and not yet stopped).
func (b *Btcd) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.running {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// Generate mines n blocks paying to MiningAddr and returns their hashes in
// chain order.
func (b *Btcd) Generate(t testing.TB, n int) []chainhash.Hash {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), btcdCallTimeout)
	defer cancel()
	strs, err := b.rpc().Generate(ctx, n)
	require.NoError(t, err, "generate %d", n)
	require.Len(t, strs, n)
	hashes := make([]chainhash.Hash, len(strs))
	for i, s := range strs {
		h, err := chainhash.NewHashFromStr(s)
		require.NoError(t, err)
		hashes[i] = *h
	}
	return hashes
}

// BestHash returns the hash of the node's chain tip.
func (b *Btcd) BestHash(t testing.TB) chainhash.Hash {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), btcdCallTimeout)
	defer cancel()
	h, err := b.rpc().GetBestBlockHash(ctx)
	require.NoError(t, err)
	return h
}

// Height returns the height of the node's chain tip.
func (b *Btcd) Height(t testing.TB) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), btcdCallTimeout)
	defer cancel()
	n, err := b.rpc().GetBlockCount(ctx)
	require.NoError(t, err)
	return n
}

// BlockHash returns the hash of the best-chain block at height.
func (b *Btcd) BlockHash(t testing.TB, height int64) chainhash.Hash {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), btcdCallTimeout)
	defer cancel()
	var s string
	require.NoError(t, b.rpc().Call(ctx, "getblockhash", []any{height}, &s))
	h, err := chainhash.NewHashFromStr(s)
	require.NoError(t, err)
	return *h
}

// Block fetches and decodes the block with the given hash.
func (b *Btcd) Block(t testing.TB, hash chainhash.Hash) *wire.MsgBlock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), btcdCallTimeout)
	defer cancel()
	s, err := b.rpc().GetBlockHex(ctx, hash)
	require.NoError(t, err)
	raw, err := hex.DecodeString(s)
	require.NoError(t, err)
	var blk wire.MsgBlock
	require.NoError(t, blk.Deserialize(bytes.NewReader(raw)))
	return &blk
}

// rpc returns the current client (Restart replaces it).
func (b *Btcd) rpc() *noderpc.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Client
}

// logTail returns the last few KiB of btcd's stdout/stderr log.
func (b *Btcd) logTail() string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(data) > logTailBytes {
		data = data[len(data)-logTailBytes:]
	}
	return string(data)
}

// NewRegtestKey returns a new random private key and its P2WPKH address on
// regtest.
func NewRegtestKey(t testing.TB) (*btcec.PrivateKey, btcutil.Address) {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	addr, err := p2wpkhAddress(key)
	require.NoError(t, err)
	return key, addr
}

// p2wpkhAddress is key's compressed-pubkey P2WPKH address on regtest.
func p2wpkhAddress(key *btcec.PrivateKey) (btcutil.Address, error) {
	pkh := btcutil.Hash160(key.PubKey().SerializeCompressed())
	return btcutil.NewAddressWitnessPubKeyHash(pkh, &chaincfg.RegressionNetParams)
}

// randomHex returns n random bytes in hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_, err := rand.Read(buf)
	require.NoError(t, err)
	return hex.EncodeToString(buf)
}
