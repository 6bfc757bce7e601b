package blockutil

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

func mustAddr(t testing.TB, s string, p *chaincfg.Params) Address {
	t.Helper()
	a, err := DecodeAddress(s, p)
	require.NoError(t, err)
	return a
}

// checkCoinbase decodes an assembled coinbase with btcd and checks every
// consensus property we promise.
func checkCoinbase(t testing.TB, cb *Coinbase, p CoinbaseParams) *wire.MsgTx {
	t.Helper()
	en1 := bytes.Repeat([]byte{0xa1}, p.Extranonce1Size)
	en2 := bytes.Repeat([]byte{0xb2}, p.Extranonce2Size)
	tx, err := cb.MsgTx(en1, en2)
	require.NoError(t, err)
	require.True(t, blockchain.IsCoinBaseTx(tx))
	sig := tx.TxIn[0].SignatureScript
	require.LessOrEqual(t, len(sig), MaxScriptSigLen)
	require.GreaterOrEqual(t, len(sig), MinScriptSigLen)
	require.Equal(t, cb.ScriptSigLen, len(sig))
	h, err := blockchain.ExtractCoinbaseHeight(btcutil.NewTx(tx))
	require.NoError(t, err)
	require.Equal(t, int32(p.Height), h, "BIP34 height")
	push, err := BIP34HeightPush(p.Height)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(sig, push), "scriptSig starts with the minimal height push")
	// The extranonces sit right after coinb1, as one direct push.
	raw, err := cb.Bytes(en1, en2)
	require.NoError(t, err)
	require.Equal(t, byte(len(en1)+len(en2)), cb.Coinb1[len(cb.Coinb1)-1])
	require.Equal(t, en1, raw[len(cb.Coinb1):len(cb.Coinb1)+len(en1)])
	require.Equal(t, tx.TxHash(), chainhash.DoubleHashH(raw), "txid is the legacy serialisation")
	// Outputs pay exactly Value, in payout order, plus the commitment.
	var sum int64
	for i, po := range p.Payouts {
		require.Equal(t, po.Address.Script, tx.TxOut[i].PkScript)
		sum += tx.TxOut[i].Value
	}
	require.Equal(t, p.Value, sum)
	if p.WitnessCommitment != nil {
		require.Len(t, tx.TxOut, len(p.Payouts)+1)
		last := tx.TxOut[len(tx.TxOut)-1]
		require.Zero(t, last.Value)
		require.Equal(t, WitnessCommitmentScript(*p.WitnessCommitment), last.PkScript)
		require.Equal(t, wire.TxWitness{make([]byte, 32)}, tx.TxIn[0].Witness)
	} else {
		require.Len(t, tx.TxOut, len(p.Payouts))
		require.Empty(t, tx.TxIn[0].Witness)
	}
	return tx
}

func TestCoinbaseScriptSigNeverOver100(t *testing.T) {
	params := &chaincfg.MainNetParams
	payout := []Payout{{Address: mustAddr(t, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", params), Weight: 1}}
	heights := []int64{0, 1, 16, 17, 127, 128, 255, 32767, 32768, 840000, 8388607, 8388608, 2147483647}
	sizes := [][2]int{{4, 8}, {0, 8}, {4, 4}, {8, 16}, {16, 16}, {1, 1}}
	for _, h := range heights {
		for _, sz := range sizes {
			for tagLen := 0; tagLen <= 300; tagLen += 7 {
				p := CoinbaseParams{
					Height: h, Value: 625000000, Payouts: payout,
					Tag:             []byte(strings.Repeat("x", tagLen)),
					Extranonce1Size: sz[0], Extranonce2Size: sz[1],
				}
				cb, err := BuildCoinbase(p)
				require.NoError(t, err, "height %d sizes %v tag %d", h, sz, tagLen)
				checkCoinbase(t, cb, p)
				require.True(t, bytes.HasPrefix(p.Tag, cb.Tag), "tag is a prefix of what was asked")
				if tagLen > 0 && len(cb.Tag) < tagLen {
					// Truncated only when there was no room.
					require.GreaterOrEqual(t, cb.ScriptSigLen, MaxScriptSigLen-1)
				}
			}
		}
	}
}

func TestCoinbaseTagWithUserName(t *testing.T) {
	// The original put "Mined by <user>" into the tag and overflowed 100
	// bytes with 4-6 character user names; any user name must fit now.
	params := &chaincfg.MainNetParams
	payout := []Payout{{Address: mustAddr(t, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", params), Weight: 1}}
	for _, user := range []string{"abcd", "abcde", "abcdef", strings.Repeat("u", 51), strings.Repeat("w", 64)} {
		tag := []byte("/ViaBTC/EB1/AD6/Mined by " + user + "/")
		p := CoinbaseParams{Height: 700000, Value: 1, Payouts: payout, Tag: tag, Extranonce1Size: 4, Extranonce2Size: 8}
		cb, err := BuildCoinbase(p)
		require.NoError(t, err)
		checkCoinbase(t, cb, p)
	}
}

func TestSplitValue(t *testing.T) {
	tests := []struct {
		name    string
		value   int64
		weights []uint64
		want    []int64
		err     string
	}{
		{"single", 625000000, []uint64{1}, []int64{625000000}, ""},
		{"even", 100, []uint64{1, 1}, []int64{50, 50}, ""},
		{"remainder to first", 100, []uint64{1, 1, 1}, []int64{34, 33, 33}, ""},
		{"weighted", 5000000000, []uint64{99, 1}, []int64{4950000000, 50000000}, ""},
		{"huge weights no overflow", 2100000000000000, []uint64{1 << 62, 1 << 62}, []int64{1050000000000000, 1050000000000000}, ""},
		{"zero weight", 1, []uint64{0}, nil, "positive"},
		{"negative", -1, []uint64{1}, nil, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitValue(tc.value, tc.weights)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestCoinbaseRejectsBadParams(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	po := []Payout{{Address: mustAddr(t, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", params), Weight: 1}}
	many := make([]Payout, MaxPayouts+1)
	for i := range many {
		many[i] = po[0]
	}
	for name, p := range map[string]CoinbaseParams{
		"no payouts":       {Height: 1, Extranonce1Size: 4, Extranonce2Size: 8},
		"too many payouts": {Height: 1, Payouts: many, Extranonce1Size: 4, Extranonce2Size: 8},
		"no extranonce2":   {Height: 1, Payouts: po, Extranonce1Size: 4},
		"huge extranonce":  {Height: 1, Payouts: po, Extranonce1Size: 30, Extranonce2Size: 8},
		"negative height":  {Height: -1, Payouts: po, Extranonce1Size: 4, Extranonce2Size: 8},
	} {
		_, err := BuildCoinbase(p)
		require.Error(t, err, name)
	}
	cb, err := BuildCoinbase(CoinbaseParams{Height: 1, Payouts: po, Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(t, err)
	_, err = cb.Bytes([]byte{1, 2, 3}, make([]byte, 8))
	require.ErrorContains(t, err, "extranonce sizes")
}

type goldenCoinbase struct {
	Name    string `json:"name"`
	Net     string `json:"net"`
	Height  int64  `json:"height"`
	Value   int64  `json:"value"`
	Payouts []struct {
		Address string `json:"address"`
		Weight  uint64 `json:"weight"`
	} `json:"payouts"`
	Tag        string `json:"tag"`
	En1        int    `json:"extranonce1_size"`
	En2        int    `json:"extranonce2_size"`
	Commitment string `json:"witness_commitment,omitempty"`
	Coinb1     string `json:"coinb1"`
	Coinb2     string `json:"coinb2"`
}

func TestCoinbaseGolden(t *testing.T) {
	path := filepath.Join("testdata", "coinbase_golden.json")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var cases []goldenCoinbase
	require.NoError(t, json.Unmarshal(raw, &cases))
	require.NotEmpty(t, cases)
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			params, err := NetParams(c.Net)
			require.NoError(t, err)
			p := CoinbaseParams{Height: c.Height, Value: c.Value, Tag: []byte(c.Tag), Extranonce1Size: c.En1, Extranonce2Size: c.En2}
			for _, po := range c.Payouts {
				p.Payouts = append(p.Payouts, Payout{Address: mustAddr(t, po.Address, params), Weight: po.Weight})
			}
			if c.Commitment != "" {
				h, err := chainhash.NewHashFromStr(c.Commitment)
				require.NoError(t, err)
				p.WitnessCommitment = h
			}
			cb, err := BuildCoinbase(p)
			require.NoError(t, err)
			checkCoinbase(t, cb, p)
			if *update {
				c.Coinb1, c.Coinb2 = hex.EncodeToString(cb.Coinb1), hex.EncodeToString(cb.Coinb2)
				return
			}
			require.Equal(t, c.Coinb1, hex.EncodeToString(cb.Coinb1), "coinb1")
			require.Equal(t, c.Coinb2, hex.EncodeToString(cb.Coinb2), "coinb2")
		})
	}
	if *update {
		out, err := json.MarshalIndent(cases, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(out, '\n'), 0o644))
	}
}

// TestWitnessCommitmentMatchesBtcd builds a block with segwit transactions
// and lets btcd's own consensus code validate the commitment, merkle root and
// sanity rules.
func TestWitnessCommitmentMatchesBtcd(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	var raws [][]byte
	var wtxids, txids []chainhash.Hash
	for i := 0; i < 7; i++ {
		tx := wire.NewMsgTx(2)
		prev := chainhash.DoubleHashH([]byte{byte(i)})
		in := wire.NewTxIn(wire.NewOutPoint(&prev, uint32(i)), nil, wire.TxWitness{[]byte{byte(i), 1, 2}, bytes.Repeat([]byte{byte(i)}, 33)})
		tx.AddTxIn(in)
		tx.AddTxOut(wire.NewTxOut(int64(1000+i), []byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}))
		var buf bytes.Buffer
		require.NoError(t, tx.Serialize(&buf))
		tt, err := DecodeTemplateTx(buf.Bytes())
		require.NoError(t, err)
		require.True(t, tt.HasWitness)
		require.Equal(t, tx.TxHash(), tt.TxID)
		require.Equal(t, tx.WitnessHash(), tt.WTxID)
		raws = append(raws, tt.Raw)
		wtxids = append(wtxids, tt.WTxID)
		txids = append(txids, tt.TxID)
	}
	commit := WitnessCommitment(wtxids)
	p := CoinbaseParams{
		Height: 500, Value: Subsidy(500, params),
		Payouts:         []Payout{{Address: mustAddr(t, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", params), Weight: 1}},
		Tag:             []byte("/hashgate/"),
		Extranonce1Size: 4, Extranonce2Size: 8, WitnessCommitment: &commit,
	}
	cb, err := BuildCoinbase(p)
	require.NoError(t, err)
	en1, en2 := []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8, 9, 10, 11, 12}
	cbTx, err := cb.MsgTx(en1, en2)
	require.NoError(t, err)
	cbid, err := cb.TxID(en1, en2)
	require.NoError(t, err)
	root := MerkleRootFromBranch(cbid, MerkleBranch(txids))
	hdr := MakeHeader(0x20000000, params.GenesisHash, &root, 1700000000, 0x207fffff, 0)
	// Grind a nonce at the regtest target so sanity checks pass.
	powLimit := TargetFromBits(0x207fffff)
	for n := uint32(0); ; n++ {
		hdr = MakeHeader(0x20000000, params.GenesisHash, &root, 1700000000, 0x207fffff, n)
		if hdr.CheckPoW(powLimit) == nil {
			break
		}
	}
	raw, err := AssembleBlock(&hdr, cbTx, raws)
	require.NoError(t, err)
	blk, err := btcutil.NewBlockFromBytes(raw)
	require.NoError(t, err)
	require.Equal(t, hdr.Hash(), *blk.Hash())
	require.Len(t, blk.Transactions(), 8)
	require.Equal(t, root, blockchain.CalcMerkleRoot(blk.Transactions(), false))
	require.NoError(t, blockchain.ValidateWitnessCommitment(blk), "btcd accepts our commitment")
	require.NoError(t, blockchain.CheckBlockSanity(blk, params.PowLimit, blockchain.NewMedianTime()))
	// The witness root btcd computes matches ours.
	wroot := blockchain.CalcMerkleRoot(blk.Transactions(), true)
	var buf [64]byte
	copy(buf[:], wroot[:])
	require.Equal(t, commit, chainhash.DoubleHashH(buf[:]))
}

func TestDecodeTemplateTxRejects(t *testing.T) {
	_, err := DecodeTemplateTx([]byte{1, 2, 3})
	require.Error(t, err)
	// A coinbase in the template list is refused.
	cbTx := wire.NewMsgTx(1)
	cbTx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, wire.MaxPrevOutIndex), []byte{1, 2}, nil))
	cbTx.AddTxOut(wire.NewTxOut(1, []byte{0x51}))
	var buf bytes.Buffer
	require.NoError(t, cbTx.Serialize(&buf))
	_, err = DecodeTemplateTx(buf.Bytes())
	require.ErrorContains(t, err, "coinbase")
	// Trailing garbage is refused.
	_, err = DecodeTemplateTx(append(buf.Bytes(), 0))
	require.Error(t, err)
}

func FuzzBuildCoinbase(f *testing.F) {
	f.Add(int64(1), []byte("/hashgate/"), 4, 8)
	f.Add(int64(8388608), []byte(strings.Repeat("t", 120)), 8, 16)
	f.Add(int64(16), []byte{}, 0, 1)
	addr, err := DecodeAddress("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", &chaincfg.MainNetParams)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, height int64, tag []byte, en1, en2 int) {
		p := CoinbaseParams{Height: height, Value: 5000000000, Payouts: []Payout{{Address: addr, Weight: 1}},
			Tag: tag, Extranonce1Size: en1, Extranonce2Size: en2}
		cb, err := BuildCoinbase(p)
		if err != nil {
			return
		}
		if height > 2147483647 {
			// btcd's ExtractCoinbaseHeight reads at most int32; only check length.
			require.LessOrEqual(t, cb.ScriptSigLen, MaxScriptSigLen)
			return
		}
		checkCoinbase(t, cb, p)
	})
}

func ExampleBuildCoinbase() {
	params := &chaincfg.RegressionNetParams
	addr, _ := DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", params)
	cb, _ := BuildCoinbase(CoinbaseParams{
		Height: 101, Value: Subsidy(101, params),
		Payouts:         []Payout{{Address: addr, Weight: 1}},
		Tag:             []byte("/hashgate/"),
		Extranonce1Size: 4, Extranonce2Size: 8,
	})
	fmt.Println(hex.EncodeToString(cb.Coinb1))
	fmt.Println(cb.ScriptSigLen, string(cb.Tag))
	// Output:
	// 01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff1a01650c
	// 26 /hashgate/
}
