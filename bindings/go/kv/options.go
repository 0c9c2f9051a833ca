package kv

// #include <stdlib.h>
// #include "charm_kv.h"
import "C"

import (
	"runtime"
	"strconv"
	"time"
	"unsafe"
)

// An Option changes how Open, ListDatabases and DeleteDatabase find the database
// and the Charm server. Options apply on top of the CHARM_* environment variables
// (CHARM_HOST, CHARM_DATA_DIR, CHARM_SSH_PORT, CHARM_HTTP_PORT, CHARM_KEY_TYPE,
// CHARM_IDENTITY_KEY), as the original package read them, and charm-kv's own
// CHARM_KV_* variables (CHARM_KV_CONNECT_TIMEOUT, CHARM_KV_REQUEST_TIMEOUT,
// CHARM_KV_SYNC_TIMEOUT, CHARM_KV_REQUIRE_TLS, CHARM_KV_DURABILITY), unless
// WithoutEnvironment is given.
type Option func(*settings)

type settings struct {
	ignoreEnv   bool
	dataDir     *string
	host        *string
	sshPort     *int
	httpPort    *int
	identityKey *string
	keyType     *string
	local       *bool
	autoPush    *bool
	timeouts    *[3]time.Duration
	requireTLS  *bool
	durability  *Durability
	readOnly    bool
	encryptKeys [][]byte
}

// WithoutEnvironment starts from the library's defaults instead of the CHARM_*
// environment variables: local mode, the platform's data directory, an ed25519
// identity. The other options still apply, in any order.
func WithoutEnvironment() Option {
	return func(s *settings) { s.ignoreEnv = true }
}

// WithDataDir sets the base data directory (like CHARM_DATA_DIR). The host name, or
// "localhost" in local mode, is appended to it to make the data path.
func WithDataDir(dir string) Option {
	return func(s *settings) { s.dataDir = &dir }
}

// WithHost sets the Charm server host name (like CHARM_HOST). "" means no server:
// local mode.
func WithHost(host string) Option {
	return func(s *settings) { s.host = &host }
}

// WithSSHPort sets the Charm server's SSH port (like CHARM_SSH_PORT; default 35353).
func WithSSHPort(port int) Option {
	return func(s *settings) { s.sshPort = &port }
}

// WithHTTPPort sets the Charm server's HTTP port (like CHARM_HTTP_PORT; default
// 35354).
func WithHTTPPort(port int) Option {
	return func(s *settings) { s.httpPort = &port }
}

// WithIdentityKey sets the SSH private key file used as the Charm identity (like
// CHARM_IDENTITY_KEY) instead of the data path's charm_<key type>.
func WithIdentityKey(path string) Option {
	return func(s *settings) { s.identityKey = &path }
}

// WithKeyType sets the SSH key type to find or generate (like CHARM_KEY_TYPE):
// "ed25519" (the default) or "rsa".
func WithKeyType(keyType string) Option {
	return func(s *settings) { s.keyType = &keyType }
}

// WithLocal(true) never contacts a server even if a host is set; the data still
// lives under that host's data path. Sync and Reset then fail with ErrNotConfigured.
func WithLocal(local bool) Option {
	return func(s *settings) { s.local = &local }
}

// WithAutoPush sets whether each write is pushed to the server right away (default
// true, as the original package did). Turn it off for bulk writes and call Sync at
// the end.
func WithAutoPush(autoPush bool) Option {
	return func(s *settings) { s.autoPush = &autoPush }
}

// WithTimeouts bounds every network step (like CHARM_KV_CONNECT_TIMEOUT,
// CHARM_KV_REQUEST_TIMEOUT and CHARM_KV_SYNC_TIMEOUT): connect is opening one
// connection, TCP and SSH handshake (default 15s); request is one SSH command or one
// HTTP API request including its whole answer, and for a snapshot transfer the
// longest silence (default 30s); sync is a whole Sync, Reset or DeleteDatabase, and
// the push after a write (default 10m). A zero duration keeps that bound as it is.
// A write whose push runs out of time still succeeds: it is committed and stays
// pending (PendingWrites) for the next write or Sync.
func WithTimeouts(connect, request, sync time.Duration) Option {
	return func(s *settings) { s.timeouts = &[3]time.Duration{connect, request, sync} }
}

// WithReadOnly opens without writing anything of ours (like CHARM_KV_READ_ONLY=1; in a
// writable directory SQLite may create the -wal and -shm files a reader needs): the database must exist (ErrNotFound otherwise) and is read
// where it is; the identity and encrypt keys must be cached already or given with
// WithEncryptKey (ErrKeys otherwise). SQLite opens the file read-only (no WAL
// switch, no schema writes), so it works on read-only media and in a data directory
// this process cannot write. Set, Delete, batch commits, Sync, Reset and
// DeleteDatabase then fail with ErrReadOnly.
func WithReadOnly() Option {
	return func(s *settings) { s.readOnly = true }
}

// WithRequireTLS(true) refuses plain http to a server that is not on this machine
// (like CHARM_KV_REQUIRE_TLS); such calls fail with ErrAuth. The server chooses the
// scheme of its HTTP API, and over plain http the JWT and the encrypted files cross
// the network readable and alterable.
func WithRequireTLS(require bool) Option {
	return func(s *settings) { s.requireTLS = &require }
}

// Durability is how a commit waits for the disk; see WithDurability.
type Durability string

const (
	// DurabilityFull (the default) fsyncs every commit: an acknowledged write survives
	// a killed process, an OS crash and a power loss.
	DurabilityFull Durability = "full"
	// DurabilityNormal (WAL with synchronous=NORMAL) does not fsync each commit: a
	// killed process loses nothing, but an OS crash or power loss may take back the
	// last commits. The database is never corrupted.
	DurabilityNormal Durability = "normal"
)

// WithDurability sets how a commit waits for the disk (like CHARM_KV_DURABILITY):
// DurabilityFull (the default) or DurabilityNormal, which makes single writes several
// times faster at the cost of the last commits on power loss.
func WithDurability(d Durability) Option {
	return func(s *settings) { s.durability = &d }
}

// WithEncryptKey adds a Charm encrypt key (its base64 text, at least 32 bytes) to
// use instead of the account's keys. The first one given encrypts new writes; later
// ones only decrypt data written with them (key rotation). For programs that manage
// keys themselves; syncing still needs the account.
func WithEncryptKey(key []byte) Option {
	k := append([]byte(nil), key...)
	return func(s *settings) { s.encryptKeys = append(s.encryptKeys, k) }
}

func collect(opts []Option) *settings {
	s := &settings{}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

// cOptions builds the C options object for s. The caller frees it with
// C.charm_kv_options_free.
func (s *settings) cOptions() (*C.charm_kv_options, error) {
	var o *C.charm_kv_options
	var cerr *C.charm_kv_error
	var st C.charm_kv_status
	if s.ignoreEnv {
		st = C.charm_kv_options_new(&o, &cerr)
	} else {
		st = C.charm_kv_options_from_env(&o, &cerr)
	}
	if st != C.CHARM_KV_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	if err := s.apply(o); err != nil {
		C.charm_kv_options_free(o)
		return nil, err
	}
	return o, nil
}

func (s *settings) apply(o *C.charm_kv_options) error {
	var cerr *C.charm_kv_error
	check := func(st C.charm_kv_status) error {
		if st != C.CHARM_KV_STATUS_OK {
			return takeError(st, cerr)
		}
		return nil
	}
	withText := func(text string, set func(*C.char) C.charm_kv_status) error {
		if containsNUL(text) {
			return newError(StatusInvalidArgument, "text contains a NUL byte: "+strconv.Quote(text))
		}
		c := C.CString(text)
		defer C.free(unsafe.Pointer(c))
		return check(set(c))
	}
	port := func(name string, p int, set func(C.uint16_t) C.charm_kv_status) error {
		if p < 1 || p > 65535 {
			return newError(StatusInvalidArgument, name+" port out of range: "+strconv.Itoa(p))
		}
		return check(set(C.uint16_t(p)))
	}
	if s.dataDir != nil {
		if err := withText(*s.dataDir, func(c *C.char) C.charm_kv_status {
			return C.charm_kv_options_set_data_dir(o, c, &cerr)
		}); err != nil {
			return err
		}
	}
	if s.host != nil {
		if err := withText(*s.host, func(c *C.char) C.charm_kv_status {
			return C.charm_kv_options_set_host(o, c, &cerr)
		}); err != nil {
			return err
		}
	}
	if s.sshPort != nil {
		if err := port("SSH", *s.sshPort, func(p C.uint16_t) C.charm_kv_status {
			return C.charm_kv_options_set_ssh_port(o, p, &cerr)
		}); err != nil {
			return err
		}
	}
	if s.httpPort != nil {
		if err := port("HTTP", *s.httpPort, func(p C.uint16_t) C.charm_kv_status {
			return C.charm_kv_options_set_http_port(o, p, &cerr)
		}); err != nil {
			return err
		}
	}
	if s.identityKey != nil {
		if err := withText(*s.identityKey, func(c *C.char) C.charm_kv_status {
			return C.charm_kv_options_set_identity_key(o, c, &cerr)
		}); err != nil {
			return err
		}
	}
	if s.keyType != nil {
		if err := withText(*s.keyType, func(c *C.char) C.charm_kv_status {
			return C.charm_kv_options_set_key_type(o, c, &cerr)
		}); err != nil {
			return err
		}
	}
	if s.local != nil {
		if err := check(C.charm_kv_options_set_local(o, C.bool(*s.local), &cerr)); err != nil {
			return err
		}
	}
	if s.autoPush != nil {
		if err := check(C.charm_kv_options_set_auto_push(o, C.bool(*s.autoPush), &cerr)); err != nil {
			return err
		}
	}
	if s.timeouts != nil {
		var ms [3]C.uint64_t
		for i, d := range s.timeouts {
			switch {
			case d < 0 || (d > 0 && d < time.Millisecond):
				return newError(StatusInvalidArgument, "a timeout is at least 1ms: "+d.String())
			case d > 0:
				ms[i] = C.uint64_t(d / time.Millisecond)
			}
		}
		if err := check(C.charm_kv_options_set_timeouts(o, ms[0], ms[1], ms[2], &cerr)); err != nil {
			return err
		}
	}
	if s.requireTLS != nil {
		if err := check(C.charm_kv_options_set_require_tls(o, C.bool(*s.requireTLS), &cerr)); err != nil {
			return err
		}
	}
	if s.readOnly {
		if err := check(C.charm_kv_options_set_read_only(o, C.bool(true), &cerr)); err != nil {
			return err
		}
	}
	if s.durability != nil {
		if err := withText(string(*s.durability), func(c *C.char) C.charm_kv_status {
			return C.charm_kv_options_set_durability(o, c, &cerr)
		}); err != nil {
			return err
		}
	}
	for i, k := range s.encryptKeys {
		var st C.charm_kv_status
		if i == 0 {
			st = C.charm_kv_options_set_encrypt_key(o, bytesPtr(k), C.size_t(len(k)), &cerr)
		} else {
			st = C.charm_kv_options_add_encrypt_key(o, bytesPtr(k), C.size_t(len(k)), &cerr)
		}
		runtime.KeepAlive(k)
		if err := check(st); err != nil {
			return err
		}
	}
	return nil
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// bytesPtr points C at b's bytes for the duration of one call (NULL when b is
// empty, which the C ABI accepts with length 0). The caller keeps b alive with
// runtime.KeepAlive after the call.
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// slice borrows b for one C call as a charm_kv_slice; keep b alive until it returns.
func slice(b []byte) C.charm_kv_slice {
	return C.charm_kv_slice{data: bytesPtr(b), len: C.size_t(len(b))}
}
