package kv

// A file with //export may only declare in its preamble; the C side of the
// trampolines is in account.go.

// #include <stdbool.h>
// #include <stdint.h>
import "C"

// charmKVGoLinkCode and charmKVGoLinkConfirm are the C-callable trampolines of
// LinkGenerate: they find the Go callbacks by their integer handle. A panic is
// recovered here (it must not unwind through the Rust frames below) and raised again
// by LinkGenerate once the C call has returned.
//
//export charmKVGoLinkCode
func charmKVGoLinkCode(handle C.uintptr_t, code *C.char) {
	call := lookupLink(uintptr(handle))
	if call == nil || call.panicVal != nil {
		return
	}
	defer call.recover()
	if call.onCode != nil {
		call.onCode(C.GoString(code))
	}
}

//export charmKVGoLinkConfirm
func charmKVGoLinkConfirm(handle C.uintptr_t, key, address *C.char) C.bool {
	call := lookupLink(uintptr(handle))
	if call == nil || call.panicVal != nil || call.confirm == nil {
		return false
	}
	defer call.recover()
	return C.bool(call.confirm(C.GoString(key), C.GoString(address)))
}
