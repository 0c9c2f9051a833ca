package kv

// #include <stdlib.h>
// #include "charm_kv.h"
import "C"

import (
	"runtime"
	"sync"
)

// Batch is a write transaction: sets and deletes recorded in memory and written
// atomically (all or nothing) by Commit, then pushed to the server as one snapshot
// (with auto-push). Nothing is locked while it is open, so other writers are never
// blocked by it. It replaces the original package's NewTransaction(true) and
// Commit(txn, callback).
//
// A Batch is meant for one goroutine at a time; concurrent calls are serialised,
// never unsafe. End it with Commit or Discard (Discard after Commit does nothing,
// so `defer b.Discard()` is the usual pattern).
type Batch struct {
	mu      sync.Mutex
	ptr     *C.charm_kv_batch
	cleanup runtime.Cleanup
}

// NewBatch starts a write batch.
func (kv *KV) NewBatch() (*Batch, error) {
	p, err := kv.acquire()
	if err != nil {
		return nil, err
	}
	defer kv.release()
	var ptr *C.charm_kv_batch
	var cerr *C.charm_kv_error
	if st := C.charm_kv_batch_begin(p, &ptr, &cerr); st != C.CHARM_KV_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	b := &Batch{ptr: ptr}
	b.cleanup = runtime.AddCleanup(b, func(p *C.charm_kv_batch) { C.charm_kv_batch_free(p) }, ptr)
	return b, nil
}

// Update runs fn with a new batch and commits it if fn returns nil; otherwise it
// discards the batch and returns fn's error (like Badger's DB.Update).
func (kv *KV) Update(fn func(b *Batch) error) error {
	b, err := kv.NewBatch()
	if err != nil {
		return err
	}
	defer b.Discard()
	if err := fn(b); err != nil {
		return err
	}
	return b.Commit()
}

// lock returns the live C batch with b.mu held, or ErrClosed (then unlocked).
func (b *Batch) lock() (*C.charm_kv_batch, error) {
	b.mu.Lock()
	if b.ptr == nil {
		b.mu.Unlock()
		return nil, errClosed("batch is already committed or discarded")
	}
	maybeGC()
	return b.ptr, nil
}

func (b *Batch) unlock() {
	b.mu.Unlock()
	runtime.KeepAlive(b)
}

// Set records key = value in the batch; a later Set or Delete of the same key in
// the batch replaces it. Size limits are checked here: an oversized key or value
// is refused with ErrInvalidArgument and not recorded.
func (b *Batch) Set(key, value []byte) error {
	p, err := b.lock()
	if err != nil {
		return err
	}
	defer b.unlock()
	var cerr *C.charm_kv_error
	st := C.charm_kv_batch_set(p, slice(key), slice(value), &cerr)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// Delete records the deletion of key in the batch.
func (b *Batch) Delete(key []byte) error {
	p, err := b.lock()
	if err != nil {
		return err
	}
	defer b.unlock()
	var cerr *C.charm_kv_error
	st := C.charm_kv_batch_delete(p, bytesPtr(key), C.size_t(len(key)), &cerr)
	runtime.KeepAlive(key)
	if st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// Get reads key as the batch would leave it: its own changes first, then the
// database as last committed. ErrNotFound when missing or deleted in the batch.
func (b *Batch) Get(key []byte) ([]byte, error) {
	p, err := b.lock()
	if err != nil {
		return nil, err
	}
	defer b.unlock()
	var out C.charm_kv_bytes
	var cerr *C.charm_kv_error
	st := C.charm_kv_batch_get(p, bytesPtr(key), C.size_t(len(key)), &out, &cerr)
	runtime.KeepAlive(key)
	if st != C.CHARM_KV_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	return takeBytes(&out), nil
}

// Commit writes every change atomically (all are durable, or none is) and ends the
// batch, whatever the outcome. With a server configured and auto-push on, the
// changes are then pushed as one snapshot (a failed push leaves them pending, as
// with Set).
func (b *Batch) Commit() error {
	p, err := b.lock()
	if err != nil {
		return err
	}
	defer b.unlock()
	b.ptr = nil // consumed by the call, whatever it returns
	b.cleanup.Stop()
	var cerr *C.charm_kv_error
	if st := C.charm_kv_batch_commit(p, &cerr); st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// Discard drops the changes not committed and ends the batch. It does nothing
// after Commit or a previous Discard.
func (b *Batch) Discard() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ptr == nil {
		return
	}
	b.cleanup.Stop()
	C.charm_kv_batch_rollback(b.ptr)
	b.ptr = nil
	runtime.KeepAlive(b)
}
