package kv

// #include "charm_kv.h"
import "C"

import (
	"fmt"
	"time"
)

// RemoteState says whether Status asked the Charm server, and how that went. Its
// values (Remote* constants) are generated into enums_gen.go.
type RemoteState uint32

func (s RemoteState) String() string {
	switch s {
	case RemoteNotConfigured:
		return "not configured"
	case RemoteNotChecked:
		return "not checked"
	case RemoteReachable:
		return "reachable"
	case RemoteUnreachable:
		return "unreachable"
	}
	return fmt.Sprintf("RemoteState(%d)", uint32(s))
}

// StoreStatus is the sync and storage state of a database, as `charm-kv status`
// prints it.
type StoreStatus struct {
	// LastSync is when the last successful sync of this database file ended; the
	// zero Time when it never synced.
	LastSync time.Time
	// LastSyncVersion is the local version that sync ended at.
	LastSyncVersion uint64
	// LocalVersion is the server version the local copy is based on (0: never synced).
	LocalVersion uint64
	// PendingWrites counts local writes not yet confirmed on the server.
	PendingWrites uint64
	// ChainStart is the full snapshot the local version builds on (0: none), and
	// ChainDeltas the deltas on top of it.
	ChainStart, ChainDeltas uint64
	// SizeBytes is the database file plus its write-ahead log.
	SizeBytes uint64
	// IntegrityError is nil when SQLite's quick check found nothing wrong; otherwise
	// an *Error with StatusCorrupt listing what it found.
	IntegrityError error
	// Remote says whether the server was asked and how that went.
	Remote RemoteState
	// RemoteVersion is the newest version on the server (0: none) when Remote is
	// RemoteReachable.
	RemoteVersion uint64
	// RemoteError says why the server could not be asked when Remote is
	// RemoteUnreachable (errors.Is(err, ErrNetwork), ...).
	RemoteError error
}

// Status reads the database's sync and storage state locally, without network:
// last successful sync, pending writes, versions, delta chain, size on disk and
// SQLite's quick check (which reads the whole file).
func (kv *KV) Status() (StoreStatus, error) {
	return kv.status(false)
}

// StatusWithRemote is Status that also asks the Charm server for its newest
// version. A server that does not answer within the client's network time limits
// is reported in Remote and RemoteError, not as the returned error.
func (kv *KV) StatusWithRemote() (StoreStatus, error) {
	return kv.status(true)
}

func (kv *KV) status(checkRemote bool) (StoreStatus, error) {
	p, err := kv.acquire()
	if err != nil {
		return StoreStatus{}, err
	}
	defer kv.release()
	var cs C.charm_kv_store_status
	var cerr *C.charm_kv_error
	if st := C.charm_kv_store_get_status(p, C.bool(checkRemote), &cs, &cerr); st != C.CHARM_KV_STATUS_OK {
		return StoreStatus{}, takeError(st, cerr)
	}
	s := StoreStatus{
		LastSyncVersion: uint64(cs.last_sync_version),
		LocalVersion:    uint64(cs.local_version),
		PendingWrites:   uint64(cs.pending_writes),
		ChainStart:      uint64(cs.chain_start),
		ChainDeltas:     uint64(cs.chain_deltas),
		SizeBytes:       uint64(cs.size_bytes),
		Remote:          RemoteState(cs.remote),
		RemoteVersion:   uint64(cs.remote_version),
	}
	if ms := uint64(cs.last_sync_unix_ms); ms != 0 {
		s.LastSync = time.UnixMilli(int64(ms))
	}
	// takeError frees each error object: detach them from the struct first.
	if cs.integrity_error != nil {
		s.IntegrityError = takeError(C.CHARM_KV_STATUS_CORRUPT, cs.integrity_error)
		cs.integrity_error = nil
	}
	if cs.remote_error != nil {
		s.RemoteError = takeError(C.CHARM_KV_STATUS_NETWORK, cs.remote_error)
		cs.remote_error = nil
	}
	C.charm_kv_store_status_free(&cs)
	return s, nil
}

// SyncIfStale syncs only when the last successful sync of this database ended
// maxAge or longer ago, or never happened, and reports whether it synced. Deciding
// needs no network. maxAge is counted in whole milliseconds; 0 (or less) always
// syncs.
func (kv *KV) SyncIfStale(maxAge time.Duration) (bool, error) {
	p, err := kv.acquire()
	if err != nil {
		return false, err
	}
	defer kv.release()
	ms := maxAge.Milliseconds()
	if ms < 0 {
		ms = 0
	}
	var synced C.bool
	var cerr *C.charm_kv_error
	if st := C.charm_kv_store_sync_if_stale(p, C.uint64_t(ms), &synced, &cerr); st != C.CHARM_KV_STATUS_OK {
		return false, takeError(st, cerr)
	}
	return bool(synced), nil
}
