package kv

// #include <stdint.h>
// #include "charm_kv.h"
//
// // Defined in progress_export.go (//export), with the handle as an integer.
// extern void charmKVGoSyncProgress(uintptr_t handle, uint32_t phase, uint64_t done, uint64_t total);
//
// static void charm_kv_go_progress(void *userdata, uint32_t phase, uint64_t done, uint64_t total) {
//     charmKVGoSyncProgress((uintptr_t)userdata, phase, done, total);
// }
//
// // Syncs, reporting progress to the Go callback registered as `handle` (0: none).
// // The handle travels as userdata: an integer, never a Go pointer.
// static charm_kv_status charm_kv_go_sync(const charm_kv_store *store, uintptr_t handle, charm_kv_error **err) {
//     if (handle == 0) {
//         return charm_kv_store_sync(store, NULL, NULL, err);
//     }
//     return charm_kv_store_sync(store, charm_kv_go_progress, (void *)handle, err);
// }
import "C"

import (
	"fmt"
	"sync"
)

// SyncPhase is the phase of a sync reported to a progress callback. Its values
// (Sync* constants) are generated into enums_gen.go.
type SyncPhase uint32

func (p SyncPhase) String() string {
	switch p {
	case SyncDownload:
		return "download"
	case SyncUpload:
		return "upload"
	}
	return fmt.Sprintf("SyncPhase(%d)", uint32(p))
}

// SyncProgress is one progress report of SyncWithProgress: bytes done out of Total
// (0 when unknown) in Phase.
type SyncProgress struct {
	Phase SyncPhase
	Done  uint64
	Total uint64
}

// progressCall is the state of one SyncWithProgress call, found by its handle.
type progressCall struct {
	fn       func(SyncProgress)
	panicked bool
	panicVal any
}

// progressCalls maps the integer handles given to C to running callbacks, so that
// C never holds a Go pointer.
var progressCalls struct {
	sync.Mutex
	next  uintptr
	calls map[uintptr]*progressCall
}

func registerProgress(c *progressCall) uintptr {
	progressCalls.Lock()
	defer progressCalls.Unlock()
	if progressCalls.calls == nil {
		progressCalls.calls = make(map[uintptr]*progressCall)
	}
	for {
		progressCalls.next++
		if progressCalls.next == 0 {
			continue // 0 means "no callback"
		}
		if _, used := progressCalls.calls[progressCalls.next]; !used {
			break
		}
	}
	h := progressCalls.next
	progressCalls.calls[h] = c
	return h
}

func unregisterProgress(h uintptr) {
	progressCalls.Lock()
	defer progressCalls.Unlock()
	delete(progressCalls.calls, h)
}

func lookupProgress(h uintptr) *progressCall {
	progressCalls.Lock()
	defer progressCalls.Unlock()
	return progressCalls.calls[h]
}

// SyncWithProgress is Sync, calling fn as transfers advance, on the calling
// goroutine, before SyncWithProgress returns. fn should be quick and must not use
// kv (the sync may hold its write lock: that would deadlock), nor call
// runtime.Goexit (t.FailNow in tests), which cannot leave a C call. If fn panics,
// later reports are dropped, the sync runs to its end, and the panic is raised
// again from SyncWithProgress.
func (kv *KV) SyncWithProgress(fn func(SyncProgress)) error {
	if fn == nil {
		return kv.sync(nil)
	}
	return kv.sync(&progressCall{fn: fn})
}

func (kv *KV) sync(call *progressCall) error {
	p, err := kv.acquire()
	if err != nil {
		return err
	}
	defer kv.release()
	var h uintptr
	if call != nil {
		h = registerProgress(call)
		defer unregisterProgress(h)
	}
	var cerr *C.charm_kv_error
	st := C.charm_kv_go_sync(p, C.uintptr_t(h), &cerr)
	if call != nil && call.panicked {
		if st != C.CHARM_KV_STATUS_OK {
			C.charm_kv_error_free(cerr)
		}
		panic(call.panicVal)
	}
	if st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}
