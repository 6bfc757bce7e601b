package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/noderpc"
)

// destAddresses returns one regtest address of each standard output type,
// all built from fresh keys.
func destAddresses(t *testing.T) []btcutil.Address {
	t.Helper()
	params := &chaincfg.RegressionNetParams
	key, p2wpkh := NewRegtestKey(t)
	pub := key.PubKey().SerializeCompressed()

	p2pkh, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(pub), params)
	require.NoError(t, err)

	// A 1-of-1 multisig redeem/witness script for the script-hash types.
	script, err := txscript.NewScriptBuilder().
		AddOp(txscript.OP_1).AddData(pub).AddOp(txscript.OP_1).
		AddOp(txscript.OP_CHECKMULTISIG).Script()
	require.NoError(t, err)
	p2sh, err := btcutil.NewAddressScriptHash(script, params)
	require.NoError(t, err)
	wsh := chainhash.HashB(script) // single SHA-256
	p2wsh, err := btcutil.NewAddressWitnessScriptHash(wsh, params)
	require.NoError(t, err)

	outputKey := txscript.ComputeTaprootKeyNoScript(key.PubKey())
	p2tr, err := btcutil.NewAddressTaproot(schnorr.SerializePubKey(outputKey), params)
	require.NoError(t, err)

	return []btcutil.Address{p2pkh, p2sh, p2wpkh, p2wsh, p2tr}
}

func TestBtcdSpendMatureCoinbases(t *testing.T) {
	b := StartBtcd(t, BtcdOptions{})
	require.Equal(t, int64(0), b.Height(t))
	require.Len(t, b.Generate(t, 110), 110)
	require.Equal(t, int64(110), b.Height(t))

	dests := destAddresses(t)
	const fee = 10_000
	start := time.Now()
	txs := b.SpendMatureCoinbases(t, 5, dests, fee)
	t.Logf("SpendMatureCoinbases(5) from height 110 took %s (tip now %d)", time.Since(start), b.Height(t))
	require.Len(t, txs, 5)

	ctx := context.Background()
	pool, err := b.Client.GetRawMempool(ctx)
	require.NoError(t, err)
	require.Len(t, pool, 5)

	spent := make(map[wire.OutPoint]bool)
	for i, tx := range txs {
		require.Contains(t, pool, tx.TxHash().String())
		require.True(t, tx.HasWitness(), "tx %d must be a segwit spend", i)
		require.Len(t, tx.TxIn, 1)
		require.False(t, spent[tx.TxIn[0].PreviousOutPoint], "coinbase spent twice")
		spent[tx.TxIn[0].PreviousOutPoint] = true

		wantScript, err := txscript.PayToAddrScript(dests[i%len(dests)])
		require.NoError(t, err)
		require.Equal(t, wantScript, tx.TxOut[0].PkScript, "tx %d destination", i)
		class := txscript.GetScriptClass(tx.TxOut[0].PkScript)
		require.NotEqual(t, txscript.NonStandardTy, class)
	}

	// The template offers them with a witness commitment, and a mined block
	// confirms them: the spends are consensus-valid, not only standard.
	tpl, err := b.Client.GetBlockTemplate(ctx, noderpc.TemplateRequest{})
	require.NoError(t, err)
	require.Len(t, tpl.Transactions, 5)
	require.NotEmpty(t, tpl.DefaultWitnessCommitment)
	for _, tx := range tpl.Transactions {
		require.Equal(t, int64(fee), tx.Fee)
	}

	mined := b.Block(t, b.Generate(t, 1)[0])
	require.Len(t, mined.Transactions, 6)
	pool, err = b.Client.GetRawMempool(ctx)
	require.NoError(t, err)
	require.Empty(t, pool)

	// A second call must not reuse the coinbases spent by the first.
	more := b.SpendMatureCoinbases(t, 3, dests[2:3], fee)
	require.Len(t, more, 3)
	for _, tx := range more {
		require.False(t, spent[tx.TxIn[0].PreviousOutPoint], "coinbase reused")
	}
}

func TestBtcdSpendRequiresOwnMiningAddr(t *testing.T) {
	_, other := NewRegtestKey(t)
	b := StartBtcd(t, BtcdOptions{MiningAddr: other})
	require.Equal(t, other.EncodeAddress(), b.MiningAddr.EncodeAddress())
	f := runFake(t, func(tb testing.TB) {
		b.SpendMatureCoinbases(tb, 1, []btcutil.Address{other}, 1000)
	})
	require.True(t, f.Failed())
	require.Contains(t, f.msgs[0], "is not the P2WPKH address of Key")
}

func TestBtcdTwoNodesSync(t *testing.T) {
	a := StartBtcd(t, BtcdOptions{})
	b := StartBtcd(t, BtcdOptions{ConnectTo: []string{a.P2PAddr}})

	var peers []struct {
		Addr string `json:"addr"`
	}
	Eventually(t, 30*time.Second, func() bool {
		err := b.Client.Call(context.Background(), "getpeerinfo", nil, &peers)
		return err == nil && len(peers) == 1
	}, "node b never connected to %s", a.P2PAddr)
	require.Equal(t, a.P2PAddr, peers[0].Addr)

	hashes := a.Generate(t, 5)
	Eventually(t, 30*time.Second, func() bool {
		h, err := b.Client.GetBestBlockHash(context.Background())
		return err == nil && h == hashes[4]
	}, "node b did not follow node a to %s", hashes[4])
	require.Equal(t, a.BestHash(t), b.BestHash(t))
	require.Equal(t, int64(5), b.Height(t))

	// And the other way round.
	back := b.Generate(t, 1)
	Eventually(t, 30*time.Second, func() bool {
		h, err := a.Client.GetBestBlockHash(context.Background())
		return err == nil && h == back[0]
	}, "node a did not follow node b")
}

func TestBtcdStopRestart(t *testing.T) {
	key, addr := NewRegtestKey(t)
	b := StartBtcd(t, BtcdOptions{Key: key})
	require.Equal(t, addr.EncodeAddress(), b.MiningAddr.EncodeAddress())
	require.Same(t, key, b.Key)
	b.Generate(t, 3)
	rpcAddr, p2pAddr := b.RPCAddr, b.P2PAddr

	b.Stop(t)
	b.Stop(t) // idempotent
	require.False(t, b.Running())
	_, err := b.Client.GetBlockCount(context.Background())
	require.Error(t, err, "stopped node must not answer")

	b.Restart(t)
	require.True(t, b.Running())
	require.Equal(t, rpcAddr, b.RPCAddr)
	require.Equal(t, p2pAddr, b.P2PAddr)
	// btcd wipes its regtest database at startup: back to genesis.
	require.Equal(t, int64(0), b.Height(t))
	require.Equal(t, *chaincfg.RegressionNetParams.GenesisHash, b.BestHash(t))
	hashes := b.Generate(t, 2)
	require.Equal(t, hashes[1], b.BlockHash(t, 2))
}
