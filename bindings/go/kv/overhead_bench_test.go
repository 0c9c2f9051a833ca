package kv_test

import (
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// BenchmarkCallOverhead measures one trivial C call through cgo (charm_kv_version),
// the floor under every operation of the binding.
func BenchmarkCallOverhead(b *testing.B) {
	for b.Loop() {
		_ = kv.Version()
	}
}

// BenchmarkGetMissing is Get of a key that does not exist: the lookup without
// decrypting a value.
func BenchmarkGetMissing(b *testing.B) {
	db := openLocal(b)
	fill(b, db, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.Get([]byte("missing")); err == nil {
			b.Fatal("found")
		}
	}
}
