package kv

// #include <stdlib.h>
// #include "charm_kv.h"
import "C"

import (
	"iter"
	"runtime"
	"sync"
)

// IteratorOptions selects the keys of an Iterator (prefix, start key), their order,
// and whether it reads values. The zero value is every pair, ascending.
type IteratorOptions struct {
	// Prefix keeps only the keys that start with it (empty: every key), as Badger's
	// IteratorOptions.Prefix.
	Prefix []byte
	// Start is where the iteration begins, as Badger's it.Seek(Start) before the
	// first Next: forward, at Start if it exists, else at the next larger key; with
	// Reverse, at the largest key not above Start. Empty: at the first key of the
	// order. The Prefix still bounds the iteration.
	Start []byte
	// Reverse iterates in descending byte order of keys.
	Reverse bool
	// KeysOnly skips reading (and decrypting) values: Value returns nil.
	KeysOnly bool
}

// Iterator walks the (key, value) pairs of one consistent snapshot of a database,
// in ascending (or descending) byte order of keys, optionally only those with a
// prefix and from a start key; writes made after it was created are not seen. It
// replaces Badger's txn.NewIterator of the original package (Seek is the Start
// option: the snapshot and position are fixed when it is made).
//
//	it, err := db.NewIterator(kv.IteratorOptions{})
//	if err != nil { ... }
//	defer it.Close()
//	for it.Next() {
//		fmt.Printf("%s=%s\n", it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// or, with Go 1.23 range-over-func:
//
//	for k, v := range it.All() { ... }
//	if err := it.Err(); err != nil { ... }
//
// A row whose stored key does not decrypt (written with an encrypt key not given
// to this open, or altered) cannot be placed in the order: every readable pair
// comes first, then Next returns false and Err matches ErrCorrupt.
//
// An Iterator is meant for one goroutine at a time; concurrent calls are
// serialised, never unsafe. It holds a read snapshot of the database until it
// reaches the end, fails, or is closed: Close it (defer it.Close()) when stopping
// early. Once its store is closed, Next returns false and Err matches ErrClosed.
type Iterator struct {
	mu       sync.Mutex
	ptr      *C.charm_kv_iter
	cleanup  runtime.Cleanup
	keysOnly bool
	key      []byte
	value    []byte
	err      error
}

// NewIterator starts an iteration over a snapshot of the database: the keys that
// opts selects, in its order. The key list is kept sorted while nothing is written,
// so a Prefix or Start is found by binary search.
func (kv *KV) NewIterator(opts IteratorOptions) (*Iterator, error) {
	p, err := kv.acquire()
	if err != nil {
		return nil, err
	}
	defer kv.release()
	var ptr *C.charm_kv_iter
	var cerr *C.charm_kv_error
	st := withRange(opts.Prefix, opts.Start, opts.Reverse, func(r *C.charm_kv_range) C.charm_kv_status {
		return C.charm_kv_iter_new(p, r, C.bool(!opts.KeysOnly), &ptr, &cerr)
	})
	if st != C.CHARM_KV_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	it := &Iterator{ptr: ptr, keysOnly: opts.KeysOnly}
	it.cleanup = runtime.AddCleanup(it, func(p *C.charm_kv_iter) { C.charm_kv_iter_free(p) }, ptr)
	return it, nil
}

// Next advances to the next pair and reports whether there is one. It returns
// false at the end or on an error (see Err); the snapshot is released then.
func (it *Iterator) Next() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.key, it.value = nil, nil
	if it.ptr == nil {
		return false
	}
	maybeGC()
	var k, v C.charm_kv_slice
	var has C.bool
	var cerr *C.charm_kv_error
	var st C.charm_kv_status
	if it.keysOnly {
		st = C.charm_kv_iter_next(it.ptr, &k, nil, &has, &cerr)
	} else {
		st = C.charm_kv_iter_next(it.ptr, &k, &v, &has, &cerr)
	}
	if st != C.CHARM_KV_STATUS_OK {
		it.err = takeError(st, cerr)
		it.free()
		return false
	}
	if !bool(has) {
		it.free()
		return false
	}
	// The slices are borrowed until the next call on the iterator: copy them now.
	it.key = copyBytes(k.data, k.len)
	if !it.keysOnly {
		it.value = copyBytes(v.data, v.len)
	}
	runtime.KeepAlive(it)
	return true
}

// Key returns the current key (a copy the caller may keep).
func (it *Iterator) Key() []byte {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.key
}

// Value returns the current value (a copy the caller may keep), or nil with
// KeysOnly.
func (it *Iterator) Value() []byte {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.value
}

// Err returns the error that ended the iteration, or nil if it reached the end
// (or has not ended yet).
func (it *Iterator) Err() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.err
}

// All returns the remaining pairs as a Go 1.23 iterator. Check Err after the loop.
// Breaking out of the loop early leaves the iterator where it stopped; Close it.
func (it *Iterator) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}

// Close releases the iterator and its snapshot. Closing again does nothing. It
// always returns nil; it returns an error to fit io.Closer.
func (it *Iterator) Close() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.key, it.value = nil, nil
	it.free()
	return nil
}

// free releases the C iterator; it.mu is held.
func (it *Iterator) free() {
	if it.ptr == nil {
		return
	}
	it.cleanup.Stop()
	C.charm_kv_iter_free(it.ptr)
	it.ptr = nil
	runtime.KeepAlive(it)
}
