package kv

// #include "charm_kv.h"
import "C"

import (
	"io"
	"runtime"
	"unsafe"
)

// Export writes every pair whose key starts with prefix (nil: every pair) to w as
// the JSON lines of `charm-kv export`, in key order from one snapshot. The output
// is NOT encrypted. It is built whole in memory first (by the library's own codec,
// so the command reads what Go writes), so a row that does not decrypt (ErrCorrupt)
// writes nothing; to stream a large database, use an Iterator.
func (kv *KV) Export(w io.Writer, prefix []byte) error {
	p, err := kv.acquire()
	if err != nil {
		return err
	}
	defer kv.release()
	var text C.charm_kv_bytes
	var cerr *C.charm_kv_error
	st := withRange(prefix, nil, false, func(r *C.charm_kv_range) C.charm_kv_status {
		return C.charm_kv_store_export_jsonl(p, r, &text, &cerr)
	})
	if st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	defer C.charm_kv_bytes_free(&text)
	if text.len == 0 {
		return nil
	}
	_, err = w.Write(unsafe.Slice((*byte)(unsafe.Pointer(text.data)), int(text.len)))
	return err
}

// Import sets the pairs of the JSON lines read from r (as Export or `charm-kv
// export` writes them) in one atomic batch and returns their number; with replace,
// every other key is deleted in the same batch. A malformed line is
// ErrInvalidArgument naming it ("line 3: ..."), and nothing changes.
func (kv *KV) Import(r io.Reader, replace bool) (int, error) {
	text, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	p, err := kv.acquire()
	if err != nil {
		return 0, err
	}
	defer kv.release()
	var count C.uint64_t
	var cerr *C.charm_kv_error
	st := C.charm_kv_store_import_jsonl(p, slice(text), C.bool(replace), &count, &cerr)
	runtime.KeepAlive(text)
	if st != C.CHARM_KV_STATUS_OK {
		return 0, takeError(st, cerr)
	}
	return int(count), nil
}
