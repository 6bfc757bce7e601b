package stratum

import "testing"

func BenchmarkSplitLine(b *testing.B) {
	buf := []byte(`{"params": ["alice.rig01", "1a2b", "0000000000000001", "65f1a2b3", "b2957c02"], "id": 4, "method": "mining.submit"}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		_, _, _ = SplitLine(buf, DefaultMaxLine)
	}
}

func BenchmarkDecodeSubmit(b *testing.B) {
	line := []byte(`{"params": ["alice.rig01", "1a2b", "0000000000000001", "65f1a2b3", "b2957c02", "1fffe000"], "id": 4, "method": "mining.submit"}`)
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if err := DecodeRequest(line, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeConfigure(b *testing.B) {
	line := []byte(`{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","subscribe-extranonce"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048}]}`)
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeRequest(line, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendNotify(b *testing.B) {
	n := testNotify(12)
	buf := make([]byte, 0, NotifyLen(n))
	b.ReportAllocs()
	b.SetBytes(int64(NotifyLen(n)))
	for b.Loop() {
		buf = AppendNotify(buf[:0], n)
	}
}

func BenchmarkAppendResultTrue(b *testing.B) {
	id := mkID("12345")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendResultTrue(buf[:0], id)
	}
}

func BenchmarkAppendError(b *testing.B) {
	id := mkID("12345")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendError(buf[:0], id, ErrLowDifficulty)
	}
}

func BenchmarkAppendSetDifficulty(b *testing.B) {
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSetDifficulty(buf[:0], 0.00012345)
	}
}

// BenchmarkDecodeSubmitMethodFirst: the id/method/params order of ESP-Miner
// and of our own encoder, where params are parsed in a single pass.
func BenchmarkDecodeSubmitMethodFirst(b *testing.B) {
	line := []byte(`{"id":4,"method":"mining.submit","params":["alice.rig01","1a2b","0000000000000001","65f1a2b3","b2957c02","1fffe000"]}`)
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if err := DecodeRequest(line, &r); err != nil {
			b.Fatal(err)
		}
	}
}
