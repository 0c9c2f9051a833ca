//go:build !charmkv_pkgconfig || charmkv_pkgconfig_static

// Package compare holds what the comparison benchmarks need outside test files: a
// raw SQLite peer, the floor of any design that commits each write to SQLite.
package compare

// The SQLite compiled into libcharm_kv.a (same version and compile options as
// charm-kv's), called directly: only the few functions the peer needs are declared.
// A shared libcharm_kv exports nothing but charm_kv_*, hence the build constraint.

/*
#include <stdlib.h>

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
int sqlite3_open_v2(const char *filename, sqlite3 **db, int flags, const char *vfs);
int sqlite3_close_v2(sqlite3 *db);
int sqlite3_exec(sqlite3 *db, const char *sql, void *callback, void *arg, char **errmsg);
int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **stmt, const char **tail);
int sqlite3_bind_blob(sqlite3_stmt *stmt, int i, const void *p, int n, void (*destructor)(void *));
int sqlite3_step(sqlite3_stmt *stmt);
int sqlite3_reset(sqlite3_stmt *stmt);
int sqlite3_finalize(sqlite3_stmt *stmt);
const char *sqlite3_errmsg(sqlite3 *db);

// SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
enum { raw_open_flags = 0x02 | 0x04 | 0x8000 };

// One row written with one call from Go, as the binding makes one call per set:
// bind (SQLite copies the bytes), step, reset. Returns SQLITE_DONE (101) on success.
static int raw_put(sqlite3_stmt *stmt, const void *key, int key_len, const void *value, int value_len) {
	int rc = sqlite3_bind_blob(stmt, 1, key, key_len, (void (*)(void *))-1);
	if (rc == 0) rc = sqlite3_bind_blob(stmt, 2, value, value_len, (void (*)(void *))-1);
	if (rc == 0) rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc;
}
*/
import "C"

import (
	"crypto/sha256"
	"fmt"
	"unsafe"
)

// RawStoredValue is the size of a 100-byte value as charm-kv stores it (format byte,
// 24-byte nonce, ciphertext, 16-byte tag), so both write rows of the same size.
const RawStoredValue = 1 + 24 + 100 + 16

// RawSQLite is one SQLite database with charm-kv's `kv` table and connection
// settings (WAL, the writer's 32 MiB cache and 8192-page auto-checkpoint) and
// nothing else: no encryption, no sync journal, no counters. Keys are hashed to 32
// bytes, as sealed keys are, so rows land at random places in the B-tree.
type RawSQLite struct {
	db     *C.sqlite3
	insert *C.sqlite3_stmt
	begin  *C.sqlite3_stmt
	commit *C.sqlite3_stmt
}

// OpenRawSQLite opens (creating) the database at path with synchronous FULL or
// NORMAL.
func OpenRawSQLite(path string, synchronous string) (*RawSQLite, error) {
	if synchronous != "FULL" && synchronous != "NORMAL" {
		return nil, fmt.Errorf("synchronous %q: want FULL or NORMAL", synchronous)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	r := &RawSQLite{}
	if rc := C.sqlite3_open_v2(cpath, &r.db, C.raw_open_flags, nil); rc != 0 {
		err := r.fail("open", rc)
		C.sqlite3_close_v2(r.db)
		return nil, err
	}
	setup := "PRAGMA journal_mode=WAL; PRAGMA synchronous=" + synchronous + ";" +
		" PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=8192;" +
		" CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
	if err := r.exec(setup); err != nil {
		r.Close()
		return nil, err
	}
	for _, s := range []struct {
		sql  string
		stmt **C.sqlite3_stmt
	}{
		{"INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)", &r.insert},
		{"BEGIN IMMEDIATE", &r.begin},
		{"COMMIT", &r.commit},
	} {
		csql := C.CString(s.sql)
		rc := C.sqlite3_prepare_v2(r.db, csql, -1, s.stmt, nil)
		C.free(unsafe.Pointer(csql))
		if rc != 0 {
			err := r.fail("prepare "+s.sql, rc)
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

func (r *RawSQLite) fail(what string, rc C.int) error {
	return fmt.Errorf("raw sqlite %s: %s (code %d)", what, C.GoString(C.sqlite3_errmsg(r.db)), int(rc))
}

func (r *RawSQLite) exec(sql string) error {
	csql := C.CString(sql)
	defer C.free(unsafe.Pointer(csql))
	if rc := C.sqlite3_exec(r.db, csql, nil, nil, nil); rc != 0 {
		return r.fail("exec", rc)
	}
	return nil
}

func (r *RawSQLite) step(stmt *C.sqlite3_stmt, what string) error {
	rc := C.sqlite3_step(stmt)
	C.sqlite3_reset(stmt)
	if rc != 101 {
		return r.fail(what, rc)
	}
	return nil
}

// put writes one row in the open transaction, or as its own commit outside one.
func (r *RawSQLite) put(key, value []byte) error {
	stored := sha256.Sum256(key)
	if len(value) == 0 {
		return fmt.Errorf("raw sqlite: empty value")
	}
	rc := C.raw_put(r.insert, unsafe.Pointer(&stored[0]), C.int(len(stored)),
		unsafe.Pointer(&value[0]), C.int(len(value)))
	if rc != 101 {
		return r.fail("insert", rc)
	}
	return nil
}

// Set writes one row in a transaction of its own (BEGIN IMMEDIATE ... COMMIT, as
// charm-kv's set).
func (r *RawSQLite) Set(key, value []byte) error {
	if err := r.step(r.begin, "begin"); err != nil {
		return err
	}
	if err := r.put(key, value); err != nil {
		_ = r.exec("ROLLBACK")
		return err
	}
	return r.step(r.commit, "commit")
}

// Batch writes keys(i) = value for i in [0, n) in one transaction.
func (r *RawSQLite) Batch(n int, keys func(i int) []byte, value []byte) error {
	if err := r.step(r.begin, "begin"); err != nil {
		return err
	}
	for i := range n {
		if err := r.put(keys(i), value); err != nil {
			_ = r.exec("ROLLBACK")
			return err
		}
	}
	return r.step(r.commit, "commit")
}

// Close finalizes the statements and closes the database.
func (r *RawSQLite) Close() {
	for _, s := range []*C.sqlite3_stmt{r.insert, r.begin, r.commit} {
		if s != nil {
			C.sqlite3_finalize(s)
		}
	}
	C.sqlite3_close_v2(r.db)
}
