//go:build charmkv_pkgconfig && !charmkv_pkgconfig_static

package compare

import "errors"

// RawStoredValue: see rawsqlite.go.
const RawStoredValue = 1 + 24 + 100 + 16

// RawSQLite is unavailable with a shared libcharm_kv, which exports only charm_kv_*:
// the raw SQLite peer calls the SQLite compiled into the static library.
type RawSQLite struct{}

// OpenRawSQLite fails: see RawSQLite.
func OpenRawSQLite(string, string) (*RawSQLite, error) {
	return nil, errors.New("the raw SQLite peer needs the static libcharm_kv (not -tags charmkv_pkgconfig)")
}

// Set is never reached (OpenRawSQLite fails).
func (*RawSQLite) Set(_, _ []byte) error { return errors.New("unavailable") }

// Batch is never reached (OpenRawSQLite fails).
func (*RawSQLite) Batch(int, func(int) []byte, []byte) error { return errors.New("unavailable") }

// Close does nothing.
func (*RawSQLite) Close() {}
