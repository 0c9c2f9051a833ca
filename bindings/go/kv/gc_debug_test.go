//go:build debug

package kv_test

import (
	"runtime"
	"testing"
)

// With -tags debug every call into the library is preceded by a full collection.
func TestDebugTagForcesGC(t *testing.T) {
	db := openLocal(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 3 {
		db.Get([]byte("k"))
	}
	runtime.ReadMemStats(&after)
	if n := after.NumGC - before.NumGC; n < 3 {
		t.Errorf("%d collections during 3 Gets, want at least 3", n)
	}
}
