package kv

// #include "charm_kv.h"
import "C"

import (
	"math"
	"runtime"
	"time"
)

// Expiry (TTL). A key set with an expiry reads as missing (ErrNotFound, absent from
// Keys, iterators and Export) from that time on, here and on every device it syncs
// to: the expiry is encrypted inside the value. Times are kept to the millisecond;
// the latest accepted is the end of the year 9999. See docs/at-rest-encryption.md
// and docs/sync.md.

// ttlMillis rounds a TTL up to whole milliseconds (so 1ns is 1ms, not zero); zero and
// negative TTLs stay so, and the library refuses them with ErrInvalidArgument.
func ttlMillis(ttl time.Duration) C.int64_t {
	if ttl <= 0 {
		return C.int64_t(ttl)
	}
	ms := ttl / time.Millisecond
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return C.int64_t(ms)
}

// SetWithTTL sets key to value, expiring ttl from now. A zero or negative TTL, or
// one ending after the year 9999, is ErrInvalidArgument.
func (kv *KV) SetWithTTL(key, value []byte, ttl time.Duration) error {
	return kv.call(func(p *C.charm_kv_store, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_store_set_with_ttl(p, slice(key), slice(value), ttlMillis(ttl), cerr)
		runtime.KeepAlive(key)
		runtime.KeepAlive(value)
		return st
	})
}

// SetExpiringAt sets key to value, expiring at at (Redis's EXPIREAT): a time already
// passed deletes the key. Times before 1970 or after the year 9999 are
// ErrInvalidArgument.
func (kv *KV) SetExpiringAt(key, value []byte, at time.Time) error {
	return kv.call(func(p *C.charm_kv_store, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_store_set_expiring_at(p, slice(key), slice(value), C.int64_t(at.UnixMilli()), cerr)
		runtime.KeepAlive(key)
		runtime.KeepAlive(value)
		return st
	})
}

// TTL returns the time left before key expires (at least 1ms) and true, or 0 and
// false when it has no expiry; ErrNotFound when it is missing or expired. A
// time.Duration reaches about 292 years: an expiry further away (up to the year 9999)
// gives the largest Duration; ExpiresAt gives the exact time.
func (kv *KV) TTL(key []byte) (time.Duration, bool, error) {
	var ms C.int64_t
	err := kv.call(func(p *C.charm_kv_store, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_store_ttl(p, bytesPtr(key), C.size_t(len(key)), &ms, cerr)
		runtime.KeepAlive(key)
		return st
	})
	if err != nil || ms < 0 {
		return 0, false, err
	}
	return durationOfMillis(int64(ms)), true, nil
}

// ExpiresAt returns when key expires, or the zero time when it has no expiry;
// ErrNotFound when it is missing or expired.
func (kv *KV) ExpiresAt(key []byte) (time.Time, error) {
	var ms C.int64_t
	err := kv.call(func(p *C.charm_kv_store, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_store_expires_at(p, bytesPtr(key), C.size_t(len(key)), &ms, cerr)
		runtime.KeepAlive(key)
		return st
	})
	if err != nil || ms == 0 {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(ms)), nil
}

// Expire makes key expire ttl from now, keeping its value; ErrNotFound when it is
// missing or expired, ErrInvalidArgument for a TTL as SetWithTTL refuses.
func (kv *KV) Expire(key []byte, ttl time.Duration) error {
	return kv.call(func(p *C.charm_kv_store, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_store_expire(p, bytesPtr(key), C.size_t(len(key)), ttlMillis(ttl), cerr)
		runtime.KeepAlive(key)
		return st
	})
}

// ExpireAt makes key expire at at, keeping its value (a time passed deletes it);
// ErrNotFound when it is missing or expired.
func (kv *KV) ExpireAt(key []byte, at time.Time) error {
	return kv.call(func(p *C.charm_kv_store, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_store_expire_at(p, bytesPtr(key), C.size_t(len(key)), C.int64_t(at.UnixMilli()), cerr)
		runtime.KeepAlive(key)
		return st
	})
}

// Persist removes the expiry of key, keeping its value. A key without expiry is left
// as it is (nil); ErrNotFound when it is missing or expired.
func (kv *KV) Persist(key []byte) error {
	return kv.call(func(p *C.charm_kv_store, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_store_persist(p, bytesPtr(key), C.size_t(len(key)), cerr)
		runtime.KeepAlive(key)
		return st
	})
}

// call runs one C call on the open store, turning its status into an error.
func (kv *KV) call(f func(*C.charm_kv_store, **C.charm_kv_error) C.charm_kv_status) error {
	p, err := kv.acquire()
	if err != nil {
		return err
	}
	defer kv.release()
	var cerr *C.charm_kv_error
	if st := f(p, &cerr); st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// SetWithTTL records key = value in the batch, expiring ttl from this call; an
// invalid TTL is ErrInvalidArgument here and nothing is recorded.
func (b *Batch) SetWithTTL(key, value []byte, ttl time.Duration) error {
	return b.call(func(p *C.charm_kv_batch, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_batch_set_with_ttl(p, slice(key), slice(value), ttlMillis(ttl), cerr)
		runtime.KeepAlive(key)
		runtime.KeepAlive(value)
		return st
	})
}

// SetExpiringAt records key = value in the batch, expiring at at (a time passed by
// the commit makes it a deletion).
func (b *Batch) SetExpiringAt(key, value []byte, at time.Time) error {
	return b.call(func(p *C.charm_kv_batch, cerr **C.charm_kv_error) C.charm_kv_status {
		st := C.charm_kv_batch_set_expiring_at(p, slice(key), slice(value), C.int64_t(at.UnixMilli()), cerr)
		runtime.KeepAlive(key)
		runtime.KeepAlive(value)
		return st
	})
}

func (b *Batch) call(f func(*C.charm_kv_batch, **C.charm_kv_error) C.charm_kv_status) error {
	p, err := b.lock()
	if err != nil {
		return err
	}
	defer b.unlock()
	var cerr *C.charm_kv_error
	if st := f(p, &cerr); st != C.CHARM_KV_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// durationOfMillis is ms milliseconds, saturated at the largest Duration.
func durationOfMillis(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}
