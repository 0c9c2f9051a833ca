package kv

// #include <stdlib.h>
// #include "charm_kv.h"
import "C"

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// DefaultName is the database `charm kv` and skate use when none is given.
const DefaultName = "charm.sh.kv.user.default"

// KV is an open charm-kv database: an encrypted SQLite key-value store that syncs
// with a Charm server like the original Badger-backed kv package.
//
// A KV is safe for concurrent use by any number of goroutines (reads run in
// parallel, writes are serialised by the library). Close it when done; a KV that
// becomes unreachable without Close is closed by a cleanup, as a safety net only.
type KV struct {
	name string

	// mu is held for reading during every C call on ptr and for writing while ptr
	// is freed, so the handle is never freed under a running call.
	mu      sync.RWMutex
	ptr     *C.charm_kv_store
	cleanup runtime.Cleanup
}

// OpenWithDefaults opens (creating it if needed) the database name with the
// settings of the CHARM_* environment variables, as the original package did.
func OpenWithDefaults(name string) (*KV, error) {
	return Open(name)
}

// Open opens (creating it if needed) the database name. Settings come from the
// CHARM_* environment variables, then from opts.
//
// With a Charm server configured (CHARM_HOST or WithHost), the first open of a data
// directory fetches the account's encrypt keys; with none, everything stays on this
// machine under a locally generated identity and key. Open does not pull remote
// changes: call Sync for that, as with the original package.
//
// name must not be longer than 200 bytes, "." or "..", nor contain '/', '\' or
// control characters (ErrInvalidArgument). The empty name opens DefaultName, as
// `charm kv` does without @DB.
func Open(name string, opts ...Option) (*KV, error) {
	if err := checkVersion(); err != nil {
		return nil, err
	}
	if strings.IndexByte(name, 0) >= 0 {
		return nil, newError(StatusInvalidArgument, "database name contains a NUL byte")
	}
	copts, err := collect(opts).cOptions()
	if err != nil {
		return nil, err
	}
	defer C.charm_kv_options_free(copts)
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))

	var ptr *C.charm_kv_store
	var cerr *C.charm_kv_error
	if st := C.charm_kv_store_open(cname, copts, &ptr, &cerr); st != C.CHARM_KV_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	if name == "" {
		name = DefaultName
	}
	kv := &KV{name: name, ptr: ptr}
	kv.cleanup = runtime.AddCleanup(kv, func(p *C.charm_kv_store) { C.charm_kv_store_free(p) }, ptr)
	return kv, nil
}

// Name returns the database name given to Open (DefaultName for the empty name).
func (kv *KV) Name() string { return kv.name }

// acquire returns the live C handle with kv.mu read-locked, or ErrClosed. The caller
// calls kv.release after its C call.
func (kv *KV) acquire() (*C.charm_kv_store, error) {
	kv.mu.RLock()
	if kv.ptr == nil {
		kv.mu.RUnlock()
		return nil, errClosed("store is closed")
	}
	maybeGC()
	return kv.ptr, nil
}

func (kv *KV) release() {
	kv.mu.RUnlock()
	runtime.KeepAlive(kv)
}

// Close closes the database. It waits for calls running on other goroutines; later
// calls on kv (and on its iterators and batches) fail with ErrClosed. Closing again
// does nothing and returns nil.
func (kv *KV) Close() error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.ptr == nil {
		return nil
	}
	p := kv.ptr
	kv.ptr = nil
	kv.cleanup.Stop()
	var cerr *C.charm_kv_error
	st := C.charm_kv_store_close(p, &cerr)
	C.charm_kv_store_free(p)
	runtime.KeepAlive(kv)
	if st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// Get returns a copy of the value of key, or an error matching ErrNotFound when the
// key does not exist. An empty value is returned as a non-nil empty slice.
func (kv *KV) Get(key []byte) ([]byte, error) {
	p, err := kv.acquire()
	if err != nil {
		return nil, err
	}
	defer kv.release()
	s := getScratchPool.Get().(*getScratch)
	defer getScratchPool.Put(s)
	st := C.charm_kv_store_get_into(p, bytesPtr(key), C.size_t(len(key)), &s.out, &s.err)
	runtime.KeepAlive(key)
	if st != C.CHARM_KV_STATUS_OK {
		err := takeError(st, s.err)
		s.err = nil
		return nil, err
	}
	if s.out.large.data != nil {
		return takeBytes(&s.out.large), nil
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(s.out.data)), int(s.out.len))
	v := make([]byte, len(buf))
	copy(v, buf)
	// The library wipes its copies of plaintext; so does the pooled buffer.
	clear(buf)
	return v, nil
}

// getScratch is what one Get hands to charm_kv_store_get_into: a buffer the value is
// copied into (values that do not fit come back allocated by the library) and the
// out-parameters. Pooled, so a Get is one C call and one allocation, the result.
// The buffer is C memory: cgo forbids passing C a Go object that points to Go
// memory, and the struct must point to its buffer.
type getScratch struct {
	out C.charm_kv_value_buf
	err *C.charm_kv_error
}

const getBufSize = 4096

var getScratchPool = sync.Pool{New: func() any {
	s := new(getScratch)
	buf := C.malloc(getBufSize)
	s.out.data = (*C.uint8_t)(buf)
	s.out.cap = getBufSize
	// The pool drops idle scratches at garbage collections: free the buffer then.
	runtime.AddCleanup(s, func(buf unsafe.Pointer) { C.free(buf) }, buf)
	return s
}}

// GetReader returns the value of key as an io.Reader. The value is read into
// memory first (the library has no streaming reads); it exists for symmetry with
// SetReader and for APIs that want a reader.
func (kv *KV) GetReader(key []byte) (io.Reader, error) {
	v, err := kv.Get(key)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(v), nil
}

// Set sets key to value (any bytes; either may be empty). The write is durable
// when Set returns; with a server configured and auto-push on (the default) it is
// pushed too. A failed push does not fail Set: the write stays pending (see
// PendingWrites) and the next write or Sync pushes it.
//
// Keys are limited to 65000 bytes and values to just under 1 GB
// (ErrInvalidArgument).
func (kv *KV) Set(key, value []byte) error {
	p, err := kv.acquire()
	if err != nil {
		return err
	}
	defer kv.release()
	var cerr *C.charm_kv_error
	st := C.charm_kv_store_set(p, slice(key), slice(value), &cerr)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// SetReader sets key to everything read from r.
func (kv *KV) SetReader(key []byte, r io.Reader) error {
	v, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return kv.Set(key, v)
}

// Delete deletes key. Deleting a missing key is not an error.
func (kv *KV) Delete(key []byte) error {
	p, err := kv.acquire()
	if err != nil {
		return err
	}
	defer kv.release()
	var cerr *C.charm_kv_error
	st := C.charm_kv_store_delete(p, bytesPtr(key), C.size_t(len(key)), &cerr)
	runtime.KeepAlive(key)
	if st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// Keys returns every key, in ascending byte order. All or nothing: when stored keys
// do not decrypt (rows written with an encrypt key not given to this open, or
// altered), it returns ErrCorrupt with their count and no keys; an Iterator reads
// the other rows first and then stops with ErrCorrupt.
func (kv *KV) Keys() ([][]byte, error) {
	return kv.keysIn(nil, nil, false)
}

// KeysWithPrefix returns the keys that start with prefix, in ascending byte order
// (the empty prefix: every key), all or nothing as Keys. It replaces filtering Keys
// by hand (Badger's IteratorOptions.Prefix); the store keeps its key list sorted, so
// while nothing is written a prefix costs two binary searches plus the keys it
// returns. For a start key or descending order, use an Iterator with
// IteratorOptions{Prefix, Start, Reverse, KeysOnly: true}.
func (kv *KV) KeysWithPrefix(prefix []byte) ([][]byte, error) {
	return kv.keysIn(prefix, nil, false)
}

// keysIn lists the keys of a range (see IteratorOptions).
func (kv *KV) keysIn(prefix, start []byte, reverse bool) ([][]byte, error) {
	p, err := kv.acquire()
	if err != nil {
		return nil, err
	}
	defer kv.release()
	var out C.charm_kv_bytes_list
	var cerr *C.charm_kv_error
	st := withRange(prefix, start, reverse, func(r *C.charm_kv_range) C.charm_kv_status {
		return C.charm_kv_store_keys_in(p, r, &out, &cerr)
	})
	if st != C.CHARM_KV_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	defer C.charm_kv_bytes_list_free(&out)
	n := int(out.len)
	keys := make([][]byte, n)
	if n > 0 {
		items := unsafe.Slice(out.items, n)
		for i := range items {
			keys[i] = copyBytes(items[i].data, items[i].len)
		}
	}
	return keys, nil
}

// withRange calls f with a C range of prefix, start and order (nil for every key,
// ascending), valid during the call. A Go struct handed to C may hold pointers to
// Go memory only while they are pinned, so the key bytes are pinned for the call.
func withRange(prefix, start []byte, reverse bool, f func(*C.charm_kv_range) C.charm_kv_status) C.charm_kv_status {
	if len(prefix) == 0 && len(start) == 0 && !reverse {
		return f(nil)
	}
	var pinner runtime.Pinner
	defer pinner.Unpin()
	if len(prefix) > 0 {
		pinner.Pin(&prefix[0])
	}
	if len(start) > 0 {
		pinner.Pin(&start[0])
	}
	r := C.charm_kv_range{prefix: slice(prefix), start: slice(start), reverse: C.bool(reverse)}
	return f(&r)
}

// Sync pulls the newest snapshot from the Charm server and pushes local writes.
// ErrNotConfigured in local mode.
func (kv *KV) Sync() error {
	return kv.sync(nil)
}

// Reset drops the local copy and rebuilds it from the newest snapshot on the
// server. It refuses with ErrPendingWrites while local writes are not yet pushed:
// Sync first, or use ForceReset.
func (kv *KV) Reset() error {
	return kv.reset(false)
}

// ForceReset is Reset that discards local writes not yet pushed.
func (kv *KV) ForceReset() error {
	return kv.reset(true)
}

func (kv *KV) reset(force bool) error {
	p, err := kv.acquire()
	if err != nil {
		return err
	}
	defer kv.release()
	var cerr *C.charm_kv_error
	if st := C.charm_kv_store_reset(p, C.bool(force), &cerr); st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// PendingWrites returns the number of committed local writes not yet confirmed on
// a Charm server: not pushed, or pushed in a file that the last sync did not see to
// be the newest one (another device may have overtaken it; the next Sync re-pushes
// what it lacks).
func (kv *KV) PendingWrites() (uint64, error) {
	p, err := kv.acquire()
	if err != nil {
		return 0, err
	}
	defer kv.release()
	var n C.uint64_t
	var cerr *C.charm_kv_error
	if st := C.charm_kv_store_pending_writes(p, &n, &cerr); st != C.CHARM_KV_STATUS_OK {
		return 0, takeError(st, cerr)
	}
	return uint64(n), nil
}

// Backup writes a consistent copy of the database file (still encrypted) to path,
// which must not exist yet. Readers and writers carry on meanwhile.
func (kv *KV) Backup(path string) error {
	if strings.IndexByte(path, 0) >= 0 {
		return newError(StatusInvalidArgument, "path contains a NUL byte")
	}
	p, err := kv.acquire()
	if err != nil {
		return err
	}
	defer kv.release()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.charm_kv_error
	if st := C.charm_kv_store_backup_to(p, cpath, &cerr); st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// ListDatabases returns the names of the databases in the data path (from the
// CHARM_* environment and opts), sorted.
func ListDatabases(opts ...Option) ([]string, error) {
	if err := checkVersion(); err != nil {
		return nil, err
	}
	copts, err := collect(opts).cOptions()
	if err != nil {
		return nil, err
	}
	defer C.charm_kv_options_free(copts)
	var out C.charm_kv_string_list
	var cerr *C.charm_kv_error
	if st := C.charm_kv_database_list(copts, &out, &cerr); st != C.CHARM_KV_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	defer C.charm_kv_string_list_free(&out)
	n := int(out.len)
	names := make([]string, n)
	if n > 0 {
		for i, s := range unsafe.Slice(out.items, n) {
			names[i] = C.GoString(s)
		}
	}
	return names, nil
}

// DeleteDatabase deletes the database name: its file and SQLite's companion files in
// the data path (from the CHARM_* environment and opts) and, when a Charm server is
// configured (not local mode), first its copies on the server, for every device of
// the account, so that no sync brings it back. If the server copies cannot be
// deleted (ErrAuth, ErrNetwork, ErrServer, ErrKeys), nothing local is deleted.
// While a handle in this or another process has it open it fails with ErrBusy and
// deletes nothing, here or on the server: close the handles first. In local
// mode, ErrNotFound (with a message naming the database) when it does not exist;
// with a server, a database missing locally is not an error.
func DeleteDatabase(name string, opts ...Option) error {
	if err := checkVersion(); err != nil {
		return err
	}
	if strings.IndexByte(name, 0) >= 0 {
		return newError(StatusInvalidArgument, "database name contains a NUL byte")
	}
	copts, err := collect(opts).cOptions()
	if err != nil {
		return err
	}
	defer C.charm_kv_options_free(copts)
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var cerr *C.charm_kv_error
	if st := C.charm_kv_database_delete(copts, cname, &cerr); st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// takeBytes copies an owned charm_kv_bytes into Go memory and frees (wipes) it.
func takeBytes(b *C.charm_kv_bytes) []byte {
	v := copyBytes(b.data, b.len)
	C.charm_kv_bytes_free(b)
	return v
}

// copyBytes copies n bytes at p into a new non-nil Go slice.
func copyBytes(p *C.uint8_t, n C.size_t) []byte {
	v := make([]byte, int(n))
	if n > 0 {
		copy(v, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
	}
	return v
}
