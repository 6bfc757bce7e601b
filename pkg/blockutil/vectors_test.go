package blockutil

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"math/big"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"
)

// loadBlocks reads a btcd test-data block file: repeated network magic, u32
// LE length, serialised block.
func loadBlocks(t testing.TB, name string) []*wire.MsgBlock {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	r := io.Reader(bzip2.NewReader(f))
	var blocks []*wire.MsgBlock
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, uint32(wire.MainNet), binary.LittleEndian.Uint32(hdr[:4]))
		raw := make([]byte, binary.LittleEndian.Uint32(hdr[4:]))
		_, err := io.ReadFull(r, raw)
		require.NoError(t, err)
		var b wire.MsgBlock
		require.NoError(t, b.Deserialize(bytes.NewReader(raw)))
		blocks = append(blocks, &b)
	}
	return blocks
}

type vectors struct {
	Difficulty []struct {
		Bits       string  `json:"bits"`
		Difficulty float64 `json:"difficulty"`
	} `json:"difficulty"`
	Addresses []struct {
		Net     string `json:"net"`
		Address string `json:"address"`
		Kind    string `json:"kind"`
		Script  string `json:"script"`
		Error   string `json:"error"`
	} `json:"addresses"`
	Subsidy []struct {
		Net     string `json:"net"`
		Height  int64  `json:"height"`
		Subsidy int64  `json:"subsidy"`
	} `json:"subsidy"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	require.NoError(t, err)
	var v vectors
	require.NoError(t, json.Unmarshal(raw, &v))
	return v
}

// TestRealBlocks checks header assembly, hashing, proof of work, merkle roots
// and Stratum branches against real mainnet blocks from btcd's test data.
func TestRealBlocks(t *testing.T) {
	blocks := loadBlocks(t, "blk_0_to_4.dat.bz2")
	require.Len(t, blocks, 5)
	blocks = append(blocks, loadBlocks(t, "277647.dat.bz2")...)
	require.Len(t, blocks, 6)
	require.Greater(t, len(blocks[5].Transactions), 100, "block 277647 should exercise a deep tree")

	// The genesis hash is fixed by consensus.
	require.Equal(t, chaincfg.MainNetParams.GenesisHash.String(), blocks[0].BlockHash().String())
	require.Equal(t, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", blocks[0].BlockHash().String())

	powLimit := TargetFromBig(chaincfg.MainNetParams.PowLimit)
	for _, b := range blocks {
		h := &b.Header
		hdr := MakeHeader(h.Version, &h.PrevBlock, &h.MerkleRoot, uint32(h.Timestamp.Unix()), h.Bits, h.Nonce)
		var want bytes.Buffer
		require.NoError(t, h.Serialize(&want))
		require.Equal(t, want.Bytes(), hdr[:], "header bytes")
		require.Equal(t, b.BlockHash(), hdr.Hash(), "header hash")
		require.NoError(t, hdr.CheckPoW(powLimit), "real blocks meet their own target")
		require.Equal(t, h.Bits, hdr.Bits())
		require.Equal(t, h.Nonce, hdr.Nonce())
		require.Equal(t, h.PrevBlock, hdr.PrevHash())

		txids := make([]chainhash.Hash, len(b.Transactions))
		for i, tx := range b.Transactions {
			txids[i] = tx.TxHash()
		}
		require.Equal(t, h.MerkleRoot, MerkleRoot(txids), "merkle root from the tx list")
		branch := MerkleBranch(txids[1:])
		require.Equal(t, h.MerkleRoot, MerkleRootFromBranch(txids[0], branch), "root from the stratum branch")
		depth := 0
		for n := len(txids); n > 1; n = (n + 1) / 2 {
			depth++
		}
		require.Len(t, branch, depth)
	}
}

func TestDifficultyVectors(t *testing.T) {
	for _, v := range loadVectors(t).Difficulty {
		t.Run(v.Bits, func(t *testing.T) {
			bits, err := strconv.ParseUint(v.Bits, 16, 32)
			require.NoError(t, err)
			got := BitsDifficulty(uint32(bits))
			require.InEpsilon(t, v.Difficulty, got, 1e-12)
			// Round trip: the target of that difficulty is the bits' target
			// to within float precision.
			tgt, err := TargetFromDifficulty(got)
			require.NoError(t, err)
			require.InEpsilon(t, 1, ratio(tgt, TargetFromBits(uint32(bits))), 1e-12)
		})
	}
}

func ratio(a, b Target) float64 {
	fa, _ := new(big.Float).SetInt(a.Big()).Float64()
	fb, _ := new(big.Float).SetInt(b.Big()).Float64()
	return fa / fb
}

func TestFractionalDifficulty(t *testing.T) {
	diff1 := TargetFromBits(Diff1Bits)
	for _, d := range []float64{1e-8, 1e-4, 0.001, 0.5, 1, 2, 1024, 65536.5, 1e12} {
		tgt, err := TargetFromDifficulty(d)
		require.NoError(t, err, d)
		require.InEpsilon(t, d, tgt.Difficulty(), 1e-12, d)
		if d < 1 {
			require.Equal(t, 1, tgt.Cmp(diff1))
		}
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		_, err := TargetFromDifficulty(bad)
		require.ErrorIs(t, err, ErrBadDifficulty, bad)
	}
	// Difficulty 1 is exactly the 0x1d00ffff target.
	one, err := TargetFromDifficulty(1)
	require.NoError(t, err)
	require.Equal(t, diff1, one)
	require.Equal(t, "00000000ffff0000000000000000000000000000000000000000000000000000", one.Hex())
}

func TestHashMeetsAndDifficulty(t *testing.T) {
	tgt := TargetFromBits(Diff1Bits)
	// A hash equal to the target meets it; one above does not.
	var h chainhash.Hash
	be := tgt.Big().FillBytes(make([]byte, 32))
	for i := range h {
		h[i] = be[31-i]
	}
	require.True(t, HashMeets(&h, &tgt))
	require.InEpsilon(t, 1.0, HashDifficulty(&h), 1e-12)
	h[0]++
	require.False(t, HashMeets(&h, &tgt))
	h[0]--
	h[26]-- // lower a significant byte: strictly below the target
	require.True(t, HashMeets(&h, &tgt))
	require.Greater(t, HashDifficulty(&h), 1.0)
	require.True(t, math.IsInf(HashDifficulty(&chainhash.Hash{}), 1))
	var zero Target
	require.False(t, HashMeets(&h, &zero))
	require.True(t, HashMeets(&chainhash.Hash{}, &zero))
}

func TestAddressVectors(t *testing.T) {
	for _, v := range loadVectors(t).Addresses {
		t.Run(v.Net+"/"+v.Address, func(t *testing.T) {
			params, err := NetParams(v.Net)
			require.NoError(t, err)
			a, err := DecodeAddress(v.Address, params)
			if v.Error != "" {
				require.Error(t, err, v.Error)
				return
			}
			require.NoError(t, err)
			require.Equal(t, AddressKind(v.Kind), a.Kind)
			if v.Script != "" {
				require.Equal(t, v.Script, hex.EncodeToString(a.Script))
			} else {
				require.Len(t, a.Script, 22)
				require.Equal(t, []byte{0, 20}, a.Script[:2])
			}
		})
	}
}

func TestSubsidyVectors(t *testing.T) {
	for _, v := range loadVectors(t).Subsidy {
		params, err := NetParams(v.Net)
		require.NoError(t, err)
		require.Equal(t, v.Subsidy, Subsidy(v.Height, params), "%s height %d", v.Net, v.Height)
		if v.Height <= math.MaxInt32 {
			require.Equal(t, blockchain.CalcBlockSubsidy(int32(v.Height), params), Subsidy(v.Height, params),
				"agrees with btcd at %d", v.Height)
		}
	}
}

func TestNetParams(t *testing.T) {
	for name, want := range map[string]string{"mainnet": "mainnet", "testnet3": "testnet3", "signet": "signet", "regtest": "regtest", "REGTEST": "regtest"} {
		p, err := NetParams(name)
		require.NoError(t, err)
		require.Equal(t, want, p.Name)
	}
	_, err := NetParams("litecoin")
	require.ErrorContains(t, err, "unknown network")
}

func TestStratumPrevHash(t *testing.T) {
	// Block 1's previous hash is the genesis hash; pools send it word-swapped.
	g := chaincfg.MainNetParams.GenesisHash
	require.Equal(t, "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000", StratumPrevHash(g))
}
