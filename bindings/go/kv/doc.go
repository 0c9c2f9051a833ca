// Package kv is the Go binding of charm-kv: an encrypted key-value store on SQLite
// that keeps the data directory, identity, encryption keys and server protocol of
// Charm's kv package (github.com/charmbracelet/charm/kv), and syncs with a
// self-hosted Charm server (`charm serve`). It replaces the Badger-backed original
// with minimal edits: the convenience API (OpenWithDefaults, Get, Set, SetReader,
// Delete, Keys, Sync, Reset, Close) keeps its names and signatures, while the Badger
// types give way to an Iterator and a Batch.
//
//	db, err := kv.OpenWithDefaults("charm.sh.test.db") // settings from CHARM_*
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer db.Close()
//	if err := db.Sync(); err != nil && !errors.Is(err, kv.ErrNotConfigured) {
//		log.Fatal(err) // ErrNotConfigured: local mode, no server to pull from
//	}
//	if err := db.Set([]byte("dog"), []byte("food")); err != nil {
//		log.Fatal(err)
//	}
//	v, err := db.Get([]byte("dog"))
//	switch {
//	case errors.Is(err, kv.ErrNotFound):
//		fmt.Println("no dog")
//	case err != nil:
//		log.Fatal(err)
//	default:
//		fmt.Printf("got value: %s\n", v)
//	}
//
// # Settings
//
// OpenWithDefaults and Open read the same CHARM_* variables as the original
// (CHARM_HOST, CHARM_DATA_DIR, CHARM_SSH_PORT, CHARM_HTTP_PORT, CHARM_KEY_TYPE,
// CHARM_IDENTITY_KEY) and charm-kv's CHARM_KV_CONNECT_TIMEOUT,
// CHARM_KV_REQUEST_TIMEOUT, CHARM_KV_SYNC_TIMEOUT, CHARM_KV_REQUIRE_TLS,
// CHARM_KV_DURABILITY and CHARM_KV_READ_ONLY; Open's options (WithHost, WithDataDir,
// WithSSHPort, WithHTTPPort, WithIdentityKey, WithKeyType, WithLocal, WithAutoPush,
// WithTimeouts, WithRequireTLS, WithDurability, WithReadOnly, WithEncryptKey) override them, and WithoutEnvironment ignores them. Every network
// step is bounded (WithTimeouts): a write whose push cannot finish in time returns
// with the write committed and pending, never waits on the server for longer. Unlike the
// original, which defaulted to the defunct cloud.charm.sh, no CHARM_HOST means
// local mode: everything stays on this machine and Sync reports ErrNotConfigured.
// The database lives in <data dir>/<host>/charm-kv/<name>.sqlite; the original's
// Badger directories in <data dir>/<host>/kv/ are never touched (the Go client's
// `charm link` deletes that folder whole, so charm-kv keeps out of it).
//
// # Errors
//
// Failures of the library are *Error values (a Status and the library's message);
// test their category with errors.Is against the sentinels ErrNotFound,
// ErrInvalidArgument, ErrIO, ErrCorrupt, ErrKeys, ErrAuth, ErrNetwork, ErrServer,
// ErrBusy, ErrClosed, ErrNotConfigured, ErrPendingWrites, ErrPanic, ErrInternal,
// ErrReadOnly and ErrLink (one per status of the C library).
//
// # Read-only use
//
// Open with WithReadOnly reads an existing database without writing anything of ours
// (in a writable directory SQLite may create the -wal and -shm files any reader of a
// WAL database needs), also on read-only media or in a data directory this process cannot
// write; Set, Delete, batch commits, Sync, Reset and DeleteDatabase then fail with
// ErrReadOnly.
//
// # Concurrency and lifetime
//
// A *KV is safe for concurrent use by any number of goroutines. Iterators and
// batches are meant for one goroutine at a time (concurrent calls are serialised).
// Close is idempotent, waits for calls in flight, and makes later calls fail with
// ErrClosed; handles that become unreachable unclosed are released by a cleanup,
// which is a safety net, not a substitute for Close.
//
// # Migrating from github.com/charmbracelet/charm/kv
//
// Change the import path. Code using only the convenience methods compiles
// unchanged; Badger types (db.DB, *badger.Txn, badger.Options, *badger.Stream,
// badger.ErrKeyNotFound) have no counterpart and are replaced as follows.
//
// Before, with the original package:
//
//	import (
//		"github.com/charmbracelet/charm/kv"
//		"github.com/dgraph-io/badger/v3"
//	)
//
//	db, err := kv.OpenWithDefaults("my-app")
//	...
//	v, err := db.Get(key)
//	if err == badger.ErrKeyNotFound { ... }
//
//	txn, err := db.NewTransaction(true)
//	...
//	txn.Set(k1, v1)
//	txn.Delete(k2)
//	err = db.Commit(txn, func(err error) { ... })
//
//	err = db.View(func(txn *badger.Txn) error {
//		opts := badger.DefaultIteratorOptions
//		opts.Reverse = true
//		it := txn.NewIterator(opts)
//		defer it.Close()
//		for it.Rewind(); it.Valid(); it.Next() {
//			item := it.Item()
//			err := item.Value(func(v []byte) error {
//				fmt.Printf("%s=%s\n", item.Key(), v)
//				return nil
//			})
//			if err != nil {
//				return err
//			}
//		}
//		return nil
//	})
//
// After, with this package:
//
//	import "github.com/charm-kv/charm-kv/bindings/go/kv"
//
//	db, err := kv.OpenWithDefaults("my-app")
//	...
//	v, err := db.Get(key)
//	if errors.Is(err, kv.ErrNotFound) { ... }
//
//	err = db.Update(func(b *kv.Batch) error { // or NewBatch, then Commit
//		b.Set(k1, v1)
//		return b.Delete(k2)
//	})
//
//	it, err := db.NewIterator(kv.IteratorOptions{Reverse: true})
//	...
//	defer it.Close()
//	for k, v := range it.All() {
//		fmt.Printf("%s=%s\n", k, v)
//	}
//	err = it.Err()
//
// Other differences:
//
//   - Open(cc *client.Client, name, badger.Options) becomes Open(name, opts...);
//     Client() and OptionsWithEncryption are gone.
//   - Reset refuses with ErrPendingWrites when local writes were never pushed;
//     ForceReset discards them.
//   - Set, Delete and Batch.Commit are synchronous and durable when they return;
//     a failed push does not fail them (see PendingWrites, Sync).
//   - Existing data: the binding reads what the original pushed to the server
//     (Sync pulls its Badger backups), not the local Badger directory. The
//     original's push of a write races with its asynchronous commit and can miss
//     it: after the first Sync, compare Keys with the original's and set again
//     what is missing. Once the binding has pushed, the original can no longer
//     sync that database (Badger panics on the binding's SQLite snapshots):
//     switch every device of the account together.
//   - Keys and values are arbitrary bytes as before, and the empty key is refused
//     as before (ErrInvalidArgument, "key cannot be empty", where Badger said "Key
//     cannot be empty"), in batches too; keys are limited to 65000 bytes and
//     values to just under 1 GB.
//   - Database names may not be longer than 200 bytes, "." or "..", nor contain
//     '/', '\' or control characters (the original joined them into a path
//     unchecked). The empty name opens DefaultName, the database `charm kv` uses
//     without @DB (the original opened a Badger directory at the kv folder itself).
//   - Prefix and seek are options of NewIterator (IteratorOptions.Prefix, as
//     Badger's, and IteratorOptions.Start in place of Badger's Iterator.Seek,
//     which cannot move an iterator once made); KeysWithPrefix lists by prefix.
//     Rewind and ValidForPrefix have no counterpart: make a new Iterator.
//   - Expiry: Badger's Entry.WithTTL becomes SetWithTTL (and Batch.SetWithTTL),
//     Item.ExpiresAt becomes ExpiresAt (a time.Time, zero for none) and TTL; Expire,
//     ExpireAt and Persist change an existing key's expiry. Expiries are kept to the
//     millisecond (Badger: the second), up to the end of the year 9999, and travel
//     through sync inside the encrypted value. Expired keys read as ErrNotFound at
//     once; their rows are deleted by a later write or Sync.
//   - Errors are ErrNotFound, ErrInvalidArgument and the others of this package
//     (errors.Is), not Badger's (badger.ErrKeyNotFound, badger.ErrEmptyKey).
//
// # Building
//
// The package links the charm-kv library through cgo. By default it links
// ../../../target/debug/libcharm_kv.a of the repository (run `cargo build` at the
// repository root first); build tags select other libraries: charmkv_release
// (target/release), charmkv_pkgconfig (an installed shared library found by
// pkg-config as charm_kv), charmkv_pkgconfig_static (charm_kv-static) and
// charmkv_external (flags from CGO_CFLAGS and CGO_LDFLAGS only). See README.md.
package kv
