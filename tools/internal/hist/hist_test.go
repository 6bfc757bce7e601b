package hist

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBuckets(t *testing.T) {
	// Buckets tile the value range without gaps, each within 1/64 of its
	// lower bound.
	for i := 0; i < nBuckets-1; i++ {
		require.Equal(t, lower(i+1), upper(i)+1, "bucket %d", i)
		require.Equal(t, i, index(lower(i)))
		require.Equal(t, i, index(upper(i)))
		if lower(i) >= sub {
			require.LessOrEqual(t, float64(upper(i)-lower(i)), float64(lower(i))/sub)
		}
	}
	require.Equal(t, nBuckets-1, index(math.MaxInt64))
}

func TestQuantilesAgainstExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Hist
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(rng.ExpFloat64() * 2e6) // ~2 ms
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		require.InEpsilon(t, float64(exact), float64(h.Quantile(q)), 0.02, "q=%v", q)
	}
	require.Equal(t, vals[len(vals)-1], h.Max())
	require.Equal(t, vals[0], h.Min())
	require.Equal(t, uint64(len(vals)), h.Count())
}

func TestMergeAndJSON(t *testing.T) {
	var a, b Hist
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); i <= 1000; i++ {
				a.Record(i * 1000)
			}
		}()
	}
	wg.Wait()
	b.Record(5)
	b.Record(9e9)
	raw, err := json.Marshal(&a)
	require.NoError(t, err)
	var c Hist
	require.NoError(t, json.Unmarshal(raw, &c))
	c.Merge(&b)
	require.Equal(t, uint64(4002), c.Count())
	require.Equal(t, int64(5), c.Min())
	require.Equal(t, int64(9e9), c.Max())
	require.InEpsilon(t, 500000.0, float64(c.Quantile(0.5)), 0.02)

	var empty Hist
	require.Zero(t, empty.Quantile(0.5))
	raw, err = json.Marshal(&empty)
	require.NoError(t, err)
	var e2 Hist
	require.NoError(t, json.Unmarshal(raw, &e2))
	require.Zero(t, e2.Count())
	require.Zero(t, e2.Min())
}
