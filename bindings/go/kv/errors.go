package kv

// #include <stdlib.h>
// #include "charm_kv.h"
import "C"

import "strconv"

// Status is the category of a failure: one value per charm_kv_status of the C
// library. The numbers never change.
type Status uint32

// The statuses (Status* constants) are generated from include/charm_kv.h into
// enums_gen.go by scripts/gen-bindings.

// String returns the library's short description of the status, such as
// "not found".
func (s Status) String() string {
	return C.GoString(C.charm_kv_status_str(C.uint32_t(s)))
}

// sentinel is the type of the Err* values: comparable, and matched by *Error.Is.
type sentinel struct {
	status Status
	text   string
}

func (s *sentinel) Error() string { return "charm-kv: " + s.text }

// The sentinel errors, one per failure status. Every error this package returns for
// a failure of the library is an *Error; test for a category with errors.Is:
//
//	v, err := db.Get(key)
//	if errors.Is(err, kv.ErrNotFound) { ... }
var (
	// ErrNotFound: the key (or database) does not exist. An ordinary outcome.
	ErrNotFound error = &sentinel{StatusNotFound, "not found"}
	// ErrInvalidArgument: a bad argument, such as an empty or path-escaping database
	// name, a key over 65000 bytes, an out-of-range option, or an SSH identity path
	// that is not a regular file or is over 64 KiB.
	ErrInvalidArgument error = &sentinel{StatusInvalidArgument, "invalid argument"}
	// ErrIO: a file-system or SQLite operation failed.
	ErrIO error = &sentinel{StatusIO, "I/O error"}
	// ErrCorrupt: stored or received data failed an integrity check, the file is not
	// a charm-kv database (a foreign SQLite database is never adopted), a row has the
	// wrong type, or a stored key does not decrypt with the keys that passed the
	// database's key check.
	ErrCorrupt error = &sentinel{StatusCorrupt, "corrupt data"}
	// ErrKeys: no usable encryption key, or the keys at hand do not decrypt the data;
	// also a Charm server naming another key 0 than the one this device synced with,
	// or not keeping an encrypt key it accepted (nothing local is changed).
	ErrKeys error = &sentinel{StatusKeys, "encryption key error"}
	// ErrAuth: authentication with the Charm server failed, its host key changed, or
	// it named an SSH key other than ours (no encrypt key is sent to it).
	ErrAuth error = &sentinel{StatusAuth, "authentication failed"}
	// ErrNetwork: the Charm server could not be reached, or the connection broke.
	ErrNetwork error = &sentinel{StatusNetwork, "network error"}
	// ErrServer: the Charm server answered with an error.
	ErrServer error = &sentinel{StatusServer, "server error"}
	// ErrBusy: the database stayed locked by another writer past the busy timeout;
	// retry. From DeleteDatabase: a handle in this or another process has it open.
	ErrBusy error = &sentinel{StatusBusy, "database busy"}
	// ErrClosed: the store (or the iterator's or batch's store) was closed, or the
	// batch was already committed or discarded.
	ErrClosed error = &sentinel{StatusClosed, "store is closed"}
	// ErrNotConfigured: the operation needs a Charm server and none is configured
	// (local mode).
	ErrNotConfigured error = &sentinel{StatusNotConfigured, "no Charm server configured"}
	// ErrPendingWrites: a Reset would discard local writes not yet pushed; Sync first
	// or use ForceReset.
	ErrPendingWrites error = &sentinel{StatusPendingWrites, "local writes not yet pushed"}
	// ErrPanic: a bug, charm-kv panicked (the panic was caught).
	ErrPanic error = &sentinel{StatusPanic, "panic inside charm-kv"}
	// ErrInternal: a bug or an unexpected condition inside charm-kv.
	ErrInternal error = &sentinel{StatusInternal, "internal error"}
	// ErrReadOnly: the store was opened WithReadOnly and the call would write (Set,
	// Delete, a batch commit, Sync, Reset, DeleteDatabase), or a read-only open found
	// a database it would first have to create or upgrade.
	ErrReadOnly error = &sentinel{StatusReadOnly, "read-only store"}
	// ErrLink: linking a device into an account did not happen (denied, timed out,
	// an invalid code, cancelled, or a server error; the message says which).
	// Nothing changed on either device or on the server.
	ErrLink error = &sentinel{StatusLink, "link failed"}
)

var sentinels = map[Status]error{
	StatusNotFound:        ErrNotFound,
	StatusInvalidArgument: ErrInvalidArgument,
	StatusIO:              ErrIO,
	StatusCorrupt:         ErrCorrupt,
	StatusKeys:            ErrKeys,
	StatusAuth:            ErrAuth,
	StatusNetwork:         ErrNetwork,
	StatusServer:          ErrServer,
	StatusBusy:            ErrBusy,
	StatusClosed:          ErrClosed,
	StatusNotConfigured:   ErrNotConfigured,
	StatusPendingWrites:   ErrPendingWrites,
	StatusPanic:           ErrPanic,
	StatusInternal:        ErrInternal,
	StatusReadOnly:        ErrReadOnly,
	StatusLink:            ErrLink,
}

// Error is a failure reported by charm-kv: its Status and the library's message
// (English, never containing key or value bytes).
//
// errors.Is(err, ErrX) is true when err is an *Error whose Status is the one of ErrX.
// A status this package does not know (from a newer library) matches ErrInternal.
type Error struct {
	Status  Status
	Message string
}

// Error returns "charm-kv: " and the message.
func (e *Error) Error() string {
	if e.Message == "" {
		return "charm-kv: " + e.Status.String()
	}
	return "charm-kv: " + e.Message
}

// Is reports whether target is the sentinel of e's status.
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	if !ok {
		return false
	}
	if _, known := sentinels[e.Status]; !known {
		return s.status == StatusInternal
	}
	return s.status == e.Status
}

// newError makes an error raised on the Go side of the binding, worded like the
// library's ("invalid argument: ...").
func newError(status Status, message string) *Error {
	return &Error{Status: status, Message: status.String() + ": " + message}
}

// errClosed is ErrClosed raised on the Go side: use of a closed store, or of a
// batch already ended.
func errClosed(message string) error {
	return &Error{Status: StatusClosed, Message: message}
}

// takeError converts a failed call's status and error object into an *Error and
// frees the object. status is not OK.
func takeError(status C.charm_kv_status, cerr *C.charm_kv_error) error {
	e := &Error{Status: Status(status)}
	if cerr != nil {
		// The object's status is authoritative; the returned one is the same.
		e.Status = Status(C.charm_kv_error_status(cerr))
		e.Message = C.GoString(C.charm_kv_error_message(cerr))
		C.charm_kv_error_free(cerr)
	}
	if e.Message == "" {
		e.Message = e.Status.String() + " (status " + strconv.FormatUint(uint64(e.Status), 10) + ")"
	}
	return e
}
