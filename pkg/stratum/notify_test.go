package stratum

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"
)

const genesisHash = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"

func mustHash(t testing.TB, display string) [32]byte {
	h, err := chainhash.NewHashFromStr(display)
	require.NoError(t, err)
	return *h
}

// testNotify returns a realistic job with k merkle branches.
func testNotify(k int) *Notify {
	h, err := chainhash.NewHashFromStr(genesisHash)
	if err != nil {
		panic(err)
	}
	n := &Notify{
		JobID:    "18c2f3a4b5c60001",
		PrevHash: *h,
		Coinb1:   bytes.Repeat([]byte{0x01, 0x00, 0xff, 0x2c}, 20),
		Coinb2:   bytes.Repeat([]byte{0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0xf2, 0x05, 0x2a, 0x01}, 12),
		Version:  0x20000000,
		Bits:     0x17034219,
		NTime:    0x6650a1b2,
		Clean:    true,
	}
	for i := 0; i < k; i++ {
		n.MerkleBranch = append(n.MerkleBranch, sha256.Sum256([]byte{byte(i)}))
	}
	return n
}

// TestNotifyGenesisPrevHash is the word-swap vector: the genesis hash in
// Stratum's prevhash form.
func TestNotifyGenesisPrevHash(t *testing.T) {
	n := &Notify{
		JobID:    "1",
		PrevHash: mustHash(t, genesisHash),
		Coinb1:   []byte{0x01, 0x00},
		Coinb2:   []byte{0xff},
		MerkleBranch: [][32]byte{
			mustHash(t, "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"), // block 1
		},
		Version: -1, // 0xffffffff: version is sent as its two's-complement bits
		Bits:    0x1d00ffff,
		NTime:   0x495fab29,
		Clean:   false,
	}
	got := AppendNotify(nil, n)
	want := `{"id":null,"method":"mining.notify","params":["1",` +
		`"0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000",` +
		`"0100","ff",` +
		`["982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e"],` +
		`"ffffffff","1d00ffff","495fab29",false]}` + "\n"
	require.Equal(t, want, string(got))
	require.Equal(t, len(want), NotifyLen(n))

	back, err := ParseNotify(got)
	require.NoError(t, err)
	require.Equal(t, n, back)
	require.Equal(t, genesisHash, chainhash.Hash(back.PrevHash).String())
}

// TestParseNotifySlushExample parses the mining.notify example of Slush
// Pool's Stratum documentation (testdata/SOURCES.md) and re-encodes it.
func TestParseNotifySlushExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "notify", "slush_example.txt"))
	require.NoError(t, err)
	line, _, err := SplitLine(raw, 0)
	require.NoError(t, err)
	n, err := ParseNotify(line)
	require.NoError(t, err)

	require.Equal(t, "bf", n.JobID)
	require.Equal(t, "f8b6164d19e2f65a2aae448f787fe66d61e57a48c0c6771b1e920b4400000000", hex.EncodeToString(n.PrevHash[:]))
	require.Equal(t, "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8", chainhash.Hash(n.PrevHash).String())
	require.Equal(t, "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", hex.EncodeToString(n.Coinb1))
	require.Equal(t, "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", hex.EncodeToString(n.Coinb2))
	require.Empty(t, n.MerkleBranch)
	require.Equal(t, int32(2), n.Version)
	require.Equal(t, uint32(0x1c2ac4af), n.Bits)
	require.Equal(t, uint32(0x504e86b9), n.NTime)
	require.False(t, n.Clean)

	// Same key order as ours, so the compact form is exactly our encoding.
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, line))
	require.Equal(t, compact.String()+"\n", string(AppendNotify(nil, n)))
}

func TestNotifyRoundTrip(t *testing.T) {
	for _, k := range []int{0, 1, 2, 12, 20} {
		n := testNotify(k)
		n.Clean = k%2 == 0
		n.JobID = `job "` + string(rune('a'+k)) + `" é`
		line := AppendNotify(nil, n)
		require.Len(t, line, NotifyLen(n), k)
		require.True(t, json.Valid(line))
		back, err := ParseNotify(line)
		require.NoError(t, err)
		require.Equal(t, n, back, k)
	}
	// Upper-case hex is accepted.
	line := bytes.ToUpper(AppendNotify(nil, testNotify(1)))
	line = bytes.Replace(line, []byte(`"MINING.NOTIFY"`), []byte(`"mining.notify"`), 1)
	line = bytes.Replace(line, []byte("TRUE"), []byte("true"), 1)
	line = bytes.Replace(line, []byte(`"ID":NULL`), []byte(`"id":null`), 1)
	line = bytes.Replace(line, []byte(`"METHOD"`), []byte(`"method"`), 1)
	line = bytes.Replace(line, []byte(`"PARAMS"`), []byte(`"params"`), 1)
	back, err := ParseNotify(line)
	require.NoError(t, err)
	want := testNotify(1)
	want.JobID = "18C2F3A4B5C60001"
	require.Equal(t, want, back)
}

func TestParseNotifyErrors(t *testing.T) {
	good := `["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002","1c2ac4af","504e86b9",false]`
	_, err := ParseNotify([]byte(`{"id":null,"method":"mining.notify","params":` + good + `}`))
	require.NoError(t, err)
	bad := map[string]string{
		"not json":      `{"id":null,`,
		"not object":    `[1]`,
		"other method":  `{"method":"mining.set_difficulty","params":` + good + `}`,
		"8 params":      `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002","1c2ac4af","504e86b9"]}`,
		"job id number": `{"method":"mining.notify","params":[1,"4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002","1c2ac4af","504e86b9",false]}`,
		"short prev":    `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e000000","01","02",[],"00000002","1c2ac4af","504e86b9",false]}`,
		"odd coinb1":    `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","011","02",[],"00000002","1c2ac4af","504e86b9",false]}`,
		"coinb2 number": `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01",2,[],"00000002","1c2ac4af","504e86b9",false]}`,
		"short branch":  `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",["00"],"00000002","1c2ac4af","504e86b9",false]}`,
		"branch object": `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",{},"00000002","1c2ac4af","504e86b9",false]}`,
		"short version": `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"0000002","1c2ac4af","504e86b9",false]}`,
		"bits number":   `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002",1,"504e86b9",false]}`,
		"ntime escaped": `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002","1c2ac4af","504e86b\u0039",false]}`,
		"clean string":  `{"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002","1c2ac4af","504e86b9","true"]}`,
	}
	for name, line := range bad {
		_, err := ParseNotify([]byte(line))
		require.Error(t, err, name)
		require.True(t, errors.Is(err, ErrNotNotify), name)
	}
}

func FuzzParseNotify(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("testdata", "notify", "slush_example.txt"))
	require.NoError(f, err)
	f.Add(raw)
	for _, k := range []int{0, 1, 3} {
		f.Add(AppendNotify(nil, testNotify(k)))
	}
	f.Add([]byte(`{"method":"mining.notify","params":["\u00e9","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","","",[],"00000002","1C2AC4AF","504e86b9",true]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		n, err := ParseNotify(line)
		if err != nil {
			require.True(t, errors.Is(err, ErrNotNotify))
			return
		}
		enc := AppendNotify(nil, n)
		require.Len(t, enc, NotifyLen(n))
		require.True(t, json.Valid(enc), "%q", enc)
		back, err := ParseNotify(enc)
		require.NoError(t, err, "%q", enc)
		require.Equal(t, n, back)
		require.Equal(t, enc, AppendNotify(nil, back))
	})
}
