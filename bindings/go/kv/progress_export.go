package kv

// A file with //export may only declare in its preamble; the C side of the
// trampoline is in progress.go.

// #include <stdint.h>
import "C"

// charmKVGoSyncProgress is the C-callable trampoline of SyncWithProgress: it finds
// the Go callback by its integer handle and runs it. A panic is recovered here
// (it must not unwind through the Rust frames below) and raised again by
// SyncWithProgress once the C call has returned.
//
//export charmKVGoSyncProgress
func charmKVGoSyncProgress(handle C.uintptr_t, phase C.uint32_t, done, total C.uint64_t) {
	call := lookupProgress(uintptr(handle))
	if call == nil || call.panicked {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			call.panicked = true
			call.panicVal = r
		}
	}()
	call.fn(SyncProgress{Phase: SyncPhase(phase), Done: uint64(done), Total: uint64(total)})
}
