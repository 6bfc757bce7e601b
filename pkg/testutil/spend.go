package testutil

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"
)

// Regtest consensus constants of btcd v0.24.2 that the spending helper
// depends on.
const (
	// coinbaseMaturity is how many blocks must follow a coinbase before a
	// transaction spending it can be mined.
	coinbaseMaturity = 100
	// segwitActiveTip is the lowest tip height at which btcd's regtest
	// mempool accepts witness transactions: BIP 9 with a 144-block window
	// moves segwit to STARTED at 144, LOCKED_IN at 288 and ACTIVE for blocks
	// from 432 on.
	segwitActiveTip = 431
	// maxScanRounds bounds the mine-and-rescan loop when other miners' blocks
	// sit between ours.
	maxScanRounds = 20
)

// coinbaseUTXO is one spendable coinbase output paying to the harness key.
type coinbaseUTXO struct {
	outpoint wire.OutPoint
	value    int64
	height   int64
}

// coinbaseWallet remembers which heights have been searched for coinbases
// paying to the harness key and which of those were already spent.
// It is guarded by Btcd.spendMu.
type coinbaseWallet struct {
	scanned int64          // highest height whose coinbase was inspected
	unspent []coinbaseUTXO // found and mature, oldest first
}

// SpendMatureCoinbases creates n real mempool transactions. Each spends a
// different mature coinbase output paying to b.Key's P2WPKH script (signed
// with a BIP 143 witness signature) and pays value−fee satoshis to
// dests[i%len(dests)]; any address type txscript.PayToAddrScript handles
// works (P2PKH, P2SH, P2WPKH, P2WSH, P2TR). The transactions are broadcast
// with sendrawtransaction, checked to be in the mempool, and returned in
// order.
//
// It mines blocks as needed: up to height 431 so that segwit is active (see
// the package documentation), and then until n unspent coinbases of the key
// are at least 100 blocks deep. Coinbases spent by an earlier call are not
// reused. It requires that MiningAddr is Key's P2WPKH address.
func (b *Btcd) SpendMatureCoinbases(t testing.TB, n int, dests []btcutil.Address, fee int64) []*wire.MsgTx {
	t.Helper()
	require.Positive(t, n, "number of transactions")
	require.NotEmpty(t, dests, "destination addresses")
	require.GreaterOrEqual(t, fee, int64(0), "fee")
	require.NotNil(t, b.Key, "btcd harness has no key")

	keyAddr, err := p2wpkhAddress(b.Key)
	require.NoError(t, err)
	keyScript, err := txscript.PayToAddrScript(keyAddr)
	require.NoError(t, err)
	minerScript, err := txscript.PayToAddrScript(b.MiningAddr)
	require.NoError(t, err)
	require.Equal(t, keyScript, minerScript,
		"MiningAddr %s is not the P2WPKH address of Key; its coinbases can't be signed", b.MiningAddr)

	destScripts := make([][]byte, len(dests))
	for i, d := range dests {
		destScripts[i], err = txscript.PayToAddrScript(d)
		require.NoError(t, err, "destination %d (%s)", i, d)
	}

	b.spendMu.Lock()
	defer b.spendMu.Unlock()

	b.activateSegwit(t)
	utxos := b.takeMatureCoinbases(t, n, keyScript)

	ctx, cancel := context.WithTimeout(context.Background(), btcdCallTimeout)
	defer cancel()
	txs := make([]*wire.MsgTx, 0, n)
	txids := make([]string, 0, n)
	for i, u := range utxos {
		require.Greater(t, u.value, fee, "coinbase %v is worth %d, fee is %d", u.outpoint, u.value, fee)
		tx := signCoinbaseSpend(t, b, u, keyScript, destScripts[i%len(destScripts)], fee)

		var buf bytes.Buffer
		require.NoError(t, tx.Serialize(&buf))
		txid, err := b.rpc().SendRawTransaction(ctx, hex.EncodeToString(buf.Bytes()))
		require.NoError(t, err, "broadcast spend of coinbase %v (height %d)", u.outpoint, u.height)
		require.Equal(t, tx.TxHash().String(), txid)
		txs = append(txs, tx)
		txids = append(txids, txid)
	}

	pool, err := b.rpc().GetRawMempool(ctx)
	require.NoError(t, err)
	require.Subset(t, pool, txids, "mempool is missing spends")
	return txs
}

// signCoinbaseSpend builds and signs a one-input, one-output transaction
// spending u (a P2WPKH output of b.Key) to destScript.
func signCoinbaseSpend(t testing.TB, b *Btcd, u coinbaseUTXO, keyScript, destScript []byte, fee int64) *wire.MsgTx {
	t.Helper()
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&u.outpoint, nil, nil))
	tx.AddTxOut(wire.NewTxOut(u.value-fee, destScript))

	fetcher := txscript.NewCannedPrevOutputFetcher(keyScript, u.value)
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)
	witness, err := txscript.WitnessSignature(tx, sigHashes, 0, u.value, keyScript,
		txscript.SigHashAll, b.Key, true)
	require.NoError(t, err)
	tx.TxIn[0].Witness = witness

	// Verify locally so a signing bug is reported here, not as a terse
	// mempool rejection.
	vm, err := txscript.NewEngine(keyScript, tx, 0, txscript.StandardVerifyFlags,
		nil, sigHashes, u.value, fetcher)
	require.NoError(t, err)
	require.NoError(t, vm.Execute(), "spend of %v does not verify", u.outpoint)
	return tx
}

// activateSegwit mines up to segwitActiveTip and checks, where btcd reports
// it, that segwit is active for the next block.
func (b *Btcd) activateSegwit(t testing.TB) {
	t.Helper()
	if h := b.Height(t); h < segwitActiveTip {
		b.Generate(t, int(segwitActiveTip-h))
	}

	var info struct {
		BIP9 map[string]struct {
			Status string `json:"status"`
		} `json:"bip9_softforks"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), btcdCallTimeout)
	defer cancel()
	require.NoError(t, b.rpc().Call(ctx, "getblockchaininfo", nil, &info))
	if sw, ok := info.BIP9["segwit"]; ok {
		require.Equal(t, "active", sw.Status, "segwit deployment state at height %d", b.Height(t))
	}
}

// takeMatureCoinbases returns n unspent coinbase outputs paying to
// keyScript that may be spent in the next block, mining more blocks when
// there are not enough. The returned outputs are marked spent.
func (b *Btcd) takeMatureCoinbases(t testing.TB, n int, keyScript []byte) []coinbaseUTXO {
	t.Helper()
	w := &b.wallet
	for round := 0; ; round++ {
		// Inspect newly mature heights, oldest first, until n are known.
		matureTip := b.Height(t) + 1 - coinbaseMaturity
		for len(w.unspent) < n && w.scanned < matureTip {
			h := w.scanned + 1
			blk := b.Block(t, b.BlockHash(t, h))
			cb := blk.Transactions[0]
			for i, out := range cb.TxOut {
				if bytes.Equal(out.PkScript, keyScript) && out.Value > 0 {
					w.unspent = append(w.unspent, coinbaseUTXO{
						outpoint: wire.OutPoint{Hash: cb.TxHash(), Index: uint32(i)},
						value:    out.Value,
						height:   h,
					})
				}
			}
			w.scanned = h
		}
		if len(w.unspent) >= n {
			taken := append([]coinbaseUTXO(nil), w.unspent[:n]...)
			w.unspent = w.unspent[n:]
			return taken
		}
		require.Less(t, round, maxScanRounds,
			"found %d of %d mature coinbases paying to the harness key", len(w.unspent), n)
		// Each new block makes one more old block mature.
		b.Generate(t, n-len(w.unspent))
	}
}
