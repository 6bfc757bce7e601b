package work

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/stratum"
)

const regtestBits = 0x207fffff

// testJob builds a job the way the jobmaster does (blockutil coinbase and
// branch), sends it through the Stratum encoder and parser, and returns it
// with what a block built from it must contain.
func testJob(t testing.TB, height int64, ntx int) (*Job, *blockutil.Coinbase, []chainhash.Hash, chainhash.Hash) {
	t.Helper()
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", &chaincfg.RegressionNetParams)
	require.NoError(t, err)
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{Height: height, Value: 5000000000,
		Payouts: []blockutil.Payout{{Address: addr, Weight: 1}}, Tag: []byte("/hashgate/"),
		Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(t, err)
	txids := make([]chainhash.Hash, ntx)
	for i := range txids {
		txids[i] = chainhash.HashH([]byte{byte(i), 1, 2})
	}
	prev := chainhash.HashH([]byte("previous block"))
	n := &stratum.Notify{JobID: "1a2b", PrevHash: prev, Coinb1: cb.Coinb1, Coinb2: cb.Coinb2,
		Version: 0x20000000, Bits: regtestBits, NTime: 1700000000, Clean: true}
	for _, h := range blockutil.MerkleBranch(txids) {
		n.MerkleBranch = append(n.MerkleBranch, h)
	}
	parsed, err := stratum.ParseNotify(stratum.AppendNotify(nil, n))
	require.NoError(t, err)
	j, err := NewJob(parsed)
	require.NoError(t, err)
	return j, cb, txids, prev
}

func TestHeaderMatchesFullBlock(t *testing.T) {
	for _, ntx := range []int{0, 1, 2, 5} {
		j, cb, txids, prev := testJob(t, 433, ntx)
		require.Equal(t, int64(433), j.Height)
		en1 := []byte{1, 2, 3, 4}
		en2 := []byte{0, 0, 0, 0, 0, 0, 0, 9}

		// The coinbase is the legacy serialisation of the tx blockutil builds.
		tx, err := cb.MsgTx(en1, en2)
		require.NoError(t, err)
		var legacy bytes.Buffer
		require.NoError(t, tx.SerializeNoWitness(&legacy))
		require.Equal(t, legacy.Bytes(), j.Coinbase(nil, en1, en2))

		// Merkle root: the branch folded up equals the root of all txids.
		root, _ := j.MerkleRoot(en1, en2, nil)
		want := blockutil.MerkleRoot(append([]chainhash.Hash{tx.TxHash()}, txids...))
		require.Equal(t, want, root, "ntx=%d", ntx)

		// The grinder's header is btcd's header with the rolled version.
		var g Grinder
		const mask = 0x1fffe000
		g.Reset(j, en1, en2, 0x00006000, mask, j.NTime+5, nil)
		target, err := ShareTarget(1e-10)
		require.NoError(t, err)
		sh, err := g.Find(&target, 10, false)
		require.NoError(t, err)
		hdr := wire.BlockHeader{Version: 0x20006000, PrevBlock: prev, MerkleRoot: want,
			Timestamp: unixTime(j.NTime + 5), Bits: regtestBits, Nonce: sh.Nonce}
		require.Equal(t, hdr.BlockHash(), sh.Hash)
		require.Equal(t, uint32(0x6000), sh.VersionBits)
		require.Equal(t, j.NTime+5, sh.NTime)
		require.Equal(t, en2, sh.EN2)
		require.Equal(t, blockutil.HashMeets(&sh.Hash, &j.NetTarget), sh.Block)
	}
}

func TestShareTarget(t *testing.T) {
	maxT := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	tests := []struct {
		name string
		diff float64
		want *big.Int
	}{
		{"difficulty 1", 1, blockutil.TargetFromBits(blockutil.Diff1Bits).Big()},
		{"below regtest caps at 2^256-1", 1e-10, maxT},
		{"regtest network", blockutil.BitsDifficulty(regtestBits), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ShareTarget(tc.diff)
			require.NoError(t, err)
			if tc.want != nil {
				require.Equal(t, 0, got.Big().Cmp(tc.want), "got %s", got.Hex())
			} else {
				// Within rounding of the regtest target 0x7fffff << 232.
				rt := blockutil.TargetFromBits(regtestBits).Big()
				diff := new(big.Int).Abs(new(big.Int).Sub(got.Big(), rt))
				require.Less(t, diff.BitLen(), 220)
			}
		})
	}
	for _, bad := range []float64{0, -1} {
		_, err := ShareTarget(bad)
		require.Error(t, err)
	}
}

func TestFindAvoidsBlocks(t *testing.T) {
	j, _, _, _ := testJob(t, 500, 3)
	target, err := ShareTarget(1e-10)
	require.NoError(t, err)
	var g Grinder
	g.Reset(j, []byte{9, 9, 9, 9}, make([]byte, 8), 0, 0, j.NTime, nil)
	blocks, shares := 0, 0
	for i := 0; i < 200; i++ {
		sh, err := g.Find(&target, 64, true)
		require.NoError(t, err)
		require.False(t, sh.Block)
		require.False(t, blockutil.HashMeets(&sh.Hash, &j.NetTarget))
		shares++
	}
	// Without avoiding, about half of the hashes are blocks on regtest.
	g.Reset(j, []byte{9, 9, 9, 9}, make([]byte, 8), 0, 0, j.NTime, nil)
	for i := 0; i < 200; i++ {
		sh, err := g.Find(&target, 1, false)
		require.NoError(t, err)
		if sh.Block {
			blocks++
		}
	}
	require.Equal(t, 200, shares)
	require.InDelta(t, 100, blocks, 40)

	// A target nothing meets exhausts the tries.
	var zero blockutil.Target
	_, err = g.Find(&zero, 10, false)
	require.ErrorIs(t, err, ErrNoShare)
}

func TestCoinbaseHeight(t *testing.T) {
	for _, h := range []int64{1, 16, 17, 127, 128, 255, 256, 433, 65535, 840000} {
		j, _, _, _ := testJob(t, h, 0)
		require.Equal(t, h, j.Height)
	}
	require.Equal(t, int64(0), CoinbaseHeight([]byte{1, 2, 3}))
}

func TestPutEN2(t *testing.T) {
	b := make([]byte, 4)
	PutEN2(b, 0x0102030405)
	require.Equal(t, []byte{2, 3, 4, 5}, b)
}

func BenchmarkFind(b *testing.B) {
	j, _, _, _ := testJob(b, 500, 8)
	var zero blockutil.Target
	var g Grinder
	g.Reset(j, []byte{1, 2, 3, 4}, make([]byte, 8), 0, 0, j.NTime, nil)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = g.Find(&zero, 1, false)
	}
}

func unixTime(s uint32) time.Time { return time.Unix(int64(s), 0) }
