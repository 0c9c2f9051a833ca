package kv

// #include <stdbool.h>
// #include <stdint.h>
// #include <stdlib.h>
// #include "charm_kv.h"
//
// // Defined in account_export.go (//export), with the handle as an integer.
// extern void charmKVGoLinkCode(uintptr_t handle, char *code);
// extern bool charmKVGoLinkConfirm(uintptr_t handle, char *key, char *address);
//
// static void charm_kv_go_link_code(void *userdata, const char *code) {
//     charmKVGoLinkCode((uintptr_t)userdata, (char *)code);
// }
//
// static bool charm_kv_go_link_confirm(void *userdata, const char *key, const char *address) {
//     return charmKVGoLinkConfirm((uintptr_t)userdata, (char *)key, (char *)address);
// }
//
// // The handle travels as userdata: an integer, never a Go pointer.
// static charm_kv_status charm_kv_go_link_generate(const charm_kv_options *options, uintptr_t handle,
//         uint64_t deadline_ms, const charm_kv_cancel *cancel, uint32_t *outcome, charm_kv_error **err) {
//     return charm_kv_link_generate(options, charm_kv_go_link_code, charm_kv_go_link_confirm,
//         (void *)handle, deadline_ms, cancel, outcome, err);
// }
import "C"

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// LinkOutcome is how a link that happened ended.
type LinkOutcome uint32

// The outcomes of LinkGenerate and LinkRequest.
const (
	// Linked: the other device's key joined the account.
	Linked LinkOutcome = 0
	// AlreadyLinked: the key was already in the account; nothing changed.
	AlreadyLinked LinkOutcome = 1
	// Merged (LinkRequest only): this device's former account was merged into the one
	// it joined; its local databases go to the account at the next sync.
	Merged LinkOutcome = 2
)

// AccountKey is one SSH key of the account.
type AccountKey struct {
	// Key is "<type> <base64>".
	Key string
	// ThisDevice is true for the key this device logs in with.
	ThisDevice bool
}

func withOptions(opts []Option, call func(*C.charm_kv_options) error) error {
	if err := checkVersion(); err != nil {
		return err
	}
	copts, err := collect(opts).cOptions()
	if err != nil {
		return err
	}
	defer C.charm_kv_options_free(copts)
	return call(copts)
}

// AccountID returns the account's id (`charm id`); the first call for a new SSH key
// creates the account. ErrNotConfigured in local mode.
func AccountID(opts ...Option) (string, error) {
	var id string
	err := withOptions(opts, func(copts *C.charm_kv_options) error {
		var out C.charm_kv_bytes
		var cerr *C.charm_kv_error
		if st := C.charm_kv_account_id(copts, &out, &cerr); st != C.CHARM_KV_STATUS_OK {
			return takeError(st, cerr)
		}
		id = string(takeBytes(&out))
		return nil
	})
	return id, err
}

// AccountKeys returns the account's SSH keys, oldest first, this device's marked.
func AccountKeys(opts ...Option) ([]AccountKey, error) {
	var keys []AccountKey
	err := withOptions(opts, func(copts *C.charm_kv_options) error {
		var out C.charm_kv_string_list
		var this C.size_t
		var cerr *C.charm_kv_error
		if st := C.charm_kv_account_keys(copts, &out, &this, &cerr); st != C.CHARM_KV_STATUS_OK {
			return takeError(st, cerr)
		}
		defer C.charm_kv_string_list_free(&out)
		n := int(out.len)
		keys = make([]AccountKey, n)
		if n > 0 {
			for i, s := range unsafe.Slice(out.items, n) {
				keys[i] = AccountKey{Key: C.GoString(s), ThisDevice: C.size_t(i) == this}
			}
		}
		return nil
	})
	return keys, err
}

// Unlink removes an SSH key (its text or SHA256: fingerprint) from the account; this
// device's own key is ErrInvalidArgument.
func Unlink(key string, opts ...Option) error {
	return withOptions(opts, func(copts *C.charm_kv_options) error {
		ckey := C.CString(key)
		defer C.free(unsafe.Pointer(ckey))
		var cerr *C.charm_kv_error
		if st := C.charm_kv_account_unlink(copts, ckey, &cerr); st != C.CHARM_KV_STATUS_OK {
			return takeError(st, cerr)
		}
		return nil
	})
}

// SyncKeys wraps every encrypt key this device holds for every SSH key of the account.
func SyncKeys(opts ...Option) error {
	return withOptions(opts, func(copts *C.charm_kv_options) error {
		var cerr *C.charm_kv_error
		if st := C.charm_kv_account_sync_keys(copts, &cerr); st != C.CHARM_KV_STATUS_OK {
			return takeError(st, cerr)
		}
		return nil
	})
}

// BackupKeys returns this device's SSH identity: the tar archive of `charm
// backup-keys`, or with privateKeyOnly the OpenSSH private key alone.
func BackupKeys(privateKeyOnly bool, opts ...Option) ([]byte, error) {
	var backup []byte
	err := withOptions(opts, func(copts *C.charm_kv_options) error {
		var out C.charm_kv_bytes
		var cerr *C.charm_kv_error
		st := C.charm_kv_account_backup_keys(copts, C.bool(privateKeyOnly), &out, &cerr)
		if st != C.CHARM_KV_STATUS_OK {
			return takeError(st, cerr)
		}
		backup = takeBytes(&out)
		return nil
	})
	return backup, err
}

// ImportKeys imports a backup (a backup-keys tar archive or a private key). Another
// identity already there is replaced only with force (else ErrInvalidArgument and
// nothing is written).
func ImportKeys(backup []byte, force bool, opts ...Option) error {
	return withOptions(opts, func(copts *C.charm_kv_options) error {
		var data *C.uint8_t
		if len(backup) > 0 {
			data = (*C.uint8_t)(C.CBytes(backup))
			defer C.free(unsafe.Pointer(data))
		}
		var cerr *C.charm_kv_error
		st := C.charm_kv_account_import_keys(copts, data, C.size_t(len(backup)), C.bool(force), &cerr)
		if st != C.CHARM_KV_STATUS_OK {
			return takeError(st, cerr)
		}
		return nil
	})
}

type linkCall struct {
	onCode   func(code string)
	confirm  func(publicKey, address string) bool
	panicVal any
}

func (c *linkCall) recover() {
	if r := recover(); r != nil {
		c.panicVal = r
	}
}

// linkCalls maps the integer handles given to C to running links.
var linkCalls struct {
	sync.Mutex
	next  uintptr
	calls map[uintptr]*linkCall
}

func lookupLink(h uintptr) *linkCall {
	linkCalls.Lock()
	defer linkCalls.Unlock()
	return linkCalls.calls[h]
}

// LinkGenerate shows a code for another device to join this device's account:
// onCode gets it, then confirm the joining device's SSH key and address (true lets it
// in). Both run on the calling goroutine, during the call. timeout bounds the whole
// wait (0: 150 s). A denied, timed-out or failed link is ErrLink and changes nothing.
func LinkGenerate(onCode func(code string), confirm func(publicKey, address string) bool,
	timeout time.Duration, opts ...Option) (LinkOutcome, error) {
	return LinkGenerateContext(context.Background(), onCode, confirm, timeout, opts...)
}

// LinkGenerateContext is LinkGenerate that ctx can cancel: once ctx is done, the wait
// for a code, a request or the server's answer ends with ErrLink ("cancelled", also
// errors.Is ctx.Err()) and nothing changes; once the server has linked, the keys are
// still shared. A deadline of ctx earlier than timeout bounds the wait too.
func LinkGenerateContext(ctx context.Context, onCode func(code string),
	confirm func(publicKey, address string) bool, timeout time.Duration,
	opts ...Option) (LinkOutcome, error) {
	call := &linkCall{onCode: onCode, confirm: confirm}
	linkCalls.Lock()
	if linkCalls.calls == nil {
		linkCalls.calls = map[uintptr]*linkCall{}
	}
	linkCalls.next++
	handle := linkCalls.next
	linkCalls.calls[handle] = call
	linkCalls.Unlock()
	defer func() {
		linkCalls.Lock()
		delete(linkCalls.calls, handle)
		linkCalls.Unlock()
	}()
	var outcome C.uint32_t
	err := withCancel(ctx, func(cancel *C.charm_kv_cancel) error {
		return withOptions(opts, func(copts *C.charm_kv_options) error {
			var cerr *C.charm_kv_error
			st := C.charm_kv_go_link_generate(copts, C.uintptr_t(handle),
				C.uint64_t(linkTimeout(ctx, timeout).Milliseconds()), cancel, &outcome, &cerr)
			if st != C.CHARM_KV_STATUS_OK {
				return takeError(st, cerr)
			}
			return nil
		})
	})
	if call.panicVal != nil {
		panic(call.panicVal)
	}
	return LinkOutcome(outcome), err
}

// linkTimeout is timeout, or what is left of ctx's deadline when that ends first
// (at least 1 ms: 0 would mean the default).
func linkTimeout(ctx context.Context, timeout time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		left := max(time.Until(deadline), time.Millisecond)
		if timeout <= 0 || left < timeout {
			return left
		}
	}
	return timeout
}

// withCancel runs call with a C cancel flag that is set when ctx is done, and frees
// the flag only once nothing can set it any more. An error after ctx ended also
// matches ctx.Err() (errors.Is).
func withCancel(ctx context.Context, call func(*C.charm_kv_cancel) error) error {
	cancel := C.charm_kv_cancel_new()
	setDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(setDone)
		C.charm_kv_cancel_set(cancel)
	})
	err := call(cancel)
	if !stop() {
		// The flag is being (or was) set: wait before freeing it.
		<-setDone
	}
	C.charm_kv_cancel_free(cancel)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// LinkRequest joins the account that showed code. timeout as for LinkGenerate. An
// invalid code, a denial or a timeout is ErrLink and changes nothing.
func LinkRequest(code string, timeout time.Duration, opts ...Option) (LinkOutcome, error) {
	return LinkRequestContext(context.Background(), code, timeout, opts...)
}

// LinkRequestContext is LinkRequest that ctx can cancel, as for LinkGenerateContext.
func LinkRequestContext(ctx context.Context, code string, timeout time.Duration,
	opts ...Option) (LinkOutcome, error) {
	var outcome C.uint32_t
	err := withCancel(ctx, func(cancel *C.charm_kv_cancel) error {
		return withOptions(opts, func(copts *C.charm_kv_options) error {
			ccode := C.CString(code)
			defer C.free(unsafe.Pointer(ccode))
			var cerr *C.charm_kv_error
			st := C.charm_kv_link_request(copts, ccode,
				C.uint64_t(linkTimeout(ctx, timeout).Milliseconds()), cancel, &outcome, &cerr)
			if st != C.CHARM_KV_STATUS_OK {
				return takeError(st, cerr)
			}
			return nil
		})
	})
	return LinkOutcome(outcome), err
}
