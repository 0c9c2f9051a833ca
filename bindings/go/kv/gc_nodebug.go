//go:build !debug

package kv

// maybeGC does nothing; see gc_debug.go.
func maybeGC() {}
