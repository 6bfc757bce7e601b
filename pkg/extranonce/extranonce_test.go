package extranonce

import (
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUniqueAndPrefixed(t *testing.T) {
	now := time.Unix(1000, 0)
	a, err := New(4, 7, time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	seen := map[string]bool{}
	for i := 0; i < 20000; i++ {
		en := make([]byte, 4)
		resumed, err := a.Allocate(en, "")
		require.NoError(t, err)
		require.False(t, resumed)
		require.Equal(t, byte(7), en[0], "gateway id first: unique across gateways")
		require.False(t, seen[string(en)])
		seen[string(en)] = true
	}
	b, err := New(4, 8, time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	en := make([]byte, 4)
	_, err = b.Allocate(en, "")
	require.NoError(t, err)
	require.False(t, seen[string(en)], "another gateway never collides")
}

func TestResume(t *testing.T) {
	now := time.Unix(1000, 0)
	a, err := New(4, 1, 10*time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	en := make([]byte, 4)
	_, err = a.Allocate(en, "")
	require.NoError(t, err)
	sid := hex.EncodeToString(en)

	// While in use it cannot be taken by a resume.
	other := make([]byte, 4)
	resumed, err := a.Allocate(other, sid)
	require.NoError(t, err)
	require.False(t, resumed)
	require.NotEqual(t, en, other)

	a.Release(en)
	now = now.Add(9 * time.Minute)
	// Parked values are not handed to strangers.
	for i := 0; i < 100; i++ {
		x := make([]byte, 4)
		_, err := a.Allocate(x, "")
		require.NoError(t, err)
		require.NotEqual(t, en, x)
	}
	got := make([]byte, 4)
	resumed, err = a.Allocate(got, sid)
	require.NoError(t, err)
	require.True(t, resumed)
	require.Equal(t, en, got)

	// After the window: no resume.
	a.Release(got)
	now = now.Add(11 * time.Minute)
	late := make([]byte, 4)
	resumed, err = a.Allocate(late, sid)
	require.NoError(t, err)
	require.False(t, resumed)
	a.Sweep()
	inUse, parked := a.Counts()
	require.Equal(t, 102, inUse)
	require.Zero(t, parked)

	// Garbage session ids are ignored.
	for _, bad := range []string{"zz", "01", "ffffffffff", "02000001"} {
		x := make([]byte, 4)
		resumed, err := a.Allocate(x, bad)
		require.NoError(t, err)
		require.False(t, resumed, bad)
	}
}

func TestExhausted(t *testing.T) {
	a, err := New(1, 0, time.Minute, nil)
	require.NoError(t, err)
	for i := 0; i < 256; i++ {
		_, err := a.Allocate(make([]byte, 1), "")
		require.NoError(t, err)
	}
	_, err = a.Allocate(make([]byte, 1), "")
	require.ErrorIs(t, err, ErrExhausted)
	_, err = New(9, 0, time.Minute, nil)
	require.Error(t, err)
}

func TestPlainUsesEveryByte(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, err := NewPlain(1, time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	seen := map[byte]bool{}
	for i := 0; i < 256; i++ {
		var b [1]byte
		if _, err := a.Allocate(b[:], ""); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if seen[b[0]] {
			t.Fatalf("value %02x handed out twice", b[0])
		}
		seen[b[0]] = true
	}
	var b [1]byte
	if _, err := a.Allocate(b[:], ""); err != ErrExhausted {
		t.Fatalf("257th value: %v, want ErrExhausted", err)
	}
	// A released value resumes by its hex.
	a.Release([]byte{0x7f})
	resumed, err := a.Allocate(b[:], "7f")
	if err != nil || !resumed || b[0] != 0x7f {
		t.Fatalf("resume: %v %v %02x", resumed, err, b[0])
	}
	a2, err := NewPlain(2, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	var c [2]byte
	if _, err := a2.Allocate(c[:], ""); err != nil {
		t.Fatal(err)
	}
}

// TestBitmapMatchesMap: an allocator keeping its values in use in a bitmap
// (small spaces) hands out, resumes and counts exactly as one keeping them
// in a map.
func TestBitmapMatchesMap(t *testing.T) {
	for _, mk := range []func(now func() time.Time) (*Allocator, error){
		func(now func() time.Time) (*Allocator, error) { return NewPlain(2, time.Minute, now) },
		func(now func() time.Time) (*Allocator, error) { return NewPlain(1, time.Minute, now) },
		func(now func() time.Time) (*Allocator, error) { return New(2, 3, time.Minute, now) },
	} {
		now := time.Unix(1700000000, 0)
		clock := func() time.Time { return now }
		bm, err := mk(clock)
		require.NoError(t, err)
		ref, err := mk(clock)
		require.NoError(t, err)
		require.True(t, bm.small)
		ref.small = false // the reference keeps a map
		rng := rand.New(rand.NewPCG(5, 6))
		var live [][]byte
		var released []string
		for i := 0; i < 30000; i++ {
			switch r := rng.IntN(10); {
			case r < 5 || len(live) == 0:
				resume := ""
				if len(released) > 0 && rng.IntN(2) == 0 {
					resume = released[rng.IntN(len(released))]
				}
				x, y := make([]byte, bm.Size()), make([]byte, ref.Size())
				r1, err1 := bm.Allocate(x, resume)
				r2, err2 := ref.Allocate(y, resume)
				require.Equal(t, err2, err1)
				require.Equal(t, r2, r1)
				require.Equal(t, y, x)
				if err1 == nil {
					live = append(live, x)
				}
			case r < 9:
				k := rng.IntN(len(live))
				bm.Release(live[k])
				ref.Release(live[k])
				released = append(released, hex.EncodeToString(live[k]))
				live = append(live[:k], live[k+1:]...)
			default:
				now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
				bm.Sweep()
				ref.Sweep()
			}
			u1, p1 := bm.Counts()
			u2, p2 := ref.Counts()
			require.Equal(t, [2]int{u2, p2}, [2]int{u1, p1})
			require.Equal(t, len(live), u1)
		}
		bm.Release([]byte{1, 2, 3}) // wrong size: ignored
		u, _ := bm.Counts()
		require.Equal(t, len(live), u)
	}
}
