package testutil

import "runtime"

// LiveHeap returns the bytes of live heap objects after two full
// collections (the second frees what the first one's finalizers released),
// for tests that report what a structure costs per item.
func LiveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
