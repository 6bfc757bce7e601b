package app

import (
	"encoding/binary"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/testutil"
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func report(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds())/1000, name+"-p99-ms")
	b.Logf("%s: n=%d p50=%s p99=%s max=%s", name, len(d), percentile(d, 0.5), percentile(d, 0.99), percentile(d, 1))
}

// BenchmarkTipToJob measures, against a real btcd, the time from a tip
// notification (a ZMQ hashblock sent right after btcd mined the block) to
// the first job for the new tip arriving on NATS at a subscriber: the empty
// job when the header beats the template, and the full job.
func BenchmarkTipToJob(b *testing.B) {
	node := testutil.StartBtcd(b, testutil.BtcdOptions{})
	node.Generate(b, 1)
	c, pub := startZMQCluster(b, node)

	var empty, full []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c.drain()
		tip := node.Generate(b, 1)[0]
		b.StartTimer()
		start := time.Now()
		pub.hashblock(b, tip)
		for {
			j := c.nextJob(10*time.Second, "for the new tip", func(j *bus.Job) bool { return j.PrevHash == tip })
			if j.Empty {
				empty = append(empty, time.Since(start))
				continue
			}
			full = append(full, time.Since(start))
			break
		}
	}
	b.StopTimer()
	report(b, "empty", empty)
	report(b, "full", full)
}

// BenchmarkFoundBlockToSubmit measures the time from a found block handed to
// the jobmaster on the bus to its reply, which comes after submitblock
// returned on every node and acceptance was confirmed with getblockheader.
func BenchmarkFoundBlockToSubmit(b *testing.B) {
	node := testutil.StartBtcd(b, testutil.BtcdOptions{})
	node.Generate(b, 1)
	natsURL, _ := testutil.StartNATS(b, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	c := startCluster(b, baseConfig(b, natsURL, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", nodeConfig("btcd", node)))
	job := c.nextJob(20*time.Second, "at start", func(*bus.Job) bool { return true })

	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fb := grind(b, job, binary.BigEndian.AppendUint32(nil, uint32(i)), make([]byte, 8), true)
		b.StartTimer()
		start := time.Now()
		res := c.submit(fb)
		took = append(took, time.Since(start))
		b.StopTimer()
		require.Equal(b, bus.BlockAccepted, res.Status, res.Reason)
		job = c.nextJob(10*time.Second, "on our block", func(j *bus.Job) bool { return j.PrevHash == fb.BlockHash && !j.Empty })
	}
	report(b, "submit", took)
}
