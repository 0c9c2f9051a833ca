//go:build debug

package kv

import "runtime"

// maybeGC runs a full collection before every C call when built with -tags debug,
// so that a missing runtime.KeepAlive (a handle collected, and its C object freed by
// the cleanup, while C still uses it) shows up as a crash in tests.
func maybeGC() { runtime.GC() }
