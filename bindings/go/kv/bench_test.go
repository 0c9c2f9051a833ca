//go:build !race

// The benchmarks run the original package in this process, which the race
// detector would fail (Badger v3.2103.2 races in DB.MaxVersion): they are left
// out of -race builds, where timings mean nothing anyway.

package kv_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/charm/client"
	charmkv "github.com/charmbracelet/charm/kv"
	badger "github.com/dgraph-io/badger/v3"

	"charm-kv/bindings/go/internal/charmtest"
	"charm-kv/bindings/go/kv"
)

// benchKeys is the number of pairs in the database read by BenchmarkGet and
// BenchmarkKeys; benchValue the size of each value.
const (
	benchKeys  = 1000
	benchValue = 100
)

func benchKey(i int) []byte { return []byte(fmt.Sprintf("key%05d", i%benchKeys)) }

// bench is the shared fixture: one server, one data directory (one account), the
// original package and the binding on the same data.
var bench struct {
	once sync.Once
	err  error
	srv  *charmtest.Server
	dir  string
	cc   *client.Client

	// read: the same benchKeys pairs in the original and in the binding.
	origRead *charmkv.KV
	kvRead   *kv.KV
}

// openOriginal opens the original package's database name with the settings
// OpenWithDefaults uses. Its Open reads the CHARM_* environment even when given a
// client (fs.NewFSWithClient calls crypt.NewCrypt, which makes a client from the
// environment), so the environment points at the fixture's server meanwhile.
func openOriginal(cc *client.Client, name string) (*charmkv.KV, error) {
	dd, err := cc.DataPath()
	if err != nil {
		return nil, err
	}
	opts := badger.DefaultOptions(filepath.Join(dd, "kv", name)).WithLoggingLevel(badger.ERROR)
	opts.Logger = nil
	opts = opts.WithValueLogFileSize(10000000)
	for k, v := range bench.srv.ClientEnv(bench.dir) {
		if old, ok := os.LookupEnv(k); ok {
			defer os.Setenv(k, old)
		} else {
			defer os.Unsetenv(k)
		}
		os.Setenv(k, v)
	}
	return charmkv.Open(cc, name, opts)
}

func benchSetup(b *testing.B) {
	b.Helper()
	srv := testServer(b)
	bench.once.Do(func() {
		bench.err = func() error {
			bench.srv = srv
			dir, err := srv.ClientDir("bench")
			if err != nil {
				return err
			}
			bench.dir = dir
			cc, err := client.NewClient(&client.Config{
				Host: charmtest.Host, SSHPort: srv.SSHPort, HTTPPort: srv.HTTPPort,
				KeyType: "ed25519", DataDir: dir,
			})
			if err != nil {
				return err
			}
			bench.cc = cc
			orig, err := openOriginal(cc, "bench-read")
			if err != nil {
				return err
			}
			bench.origRead = orig
			// One transaction, one push, as a user of the original would load data.
			txn, err := orig.NewTransaction(true)
			if err != nil {
				return err
			}
			value := make([]byte, benchValue)
			for i := range benchKeys {
				if err := txn.Set(benchKey(i), value); err != nil {
					return err
				}
			}
			if err := orig.Commit(txn, func(error) {}); err != nil {
				return err
			}
			// Its commit is asynchronous (a callback is given): wait until it landed.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				keys, err := orig.Keys()
				if err != nil {
					return err
				}
				if len(keys) == benchKeys {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("the original has %d keys, want %d", len(keys), benchKeys)
				}
			}
			// The binding gets the same pairs, also in one batch and one push. (It
			// could pull them, but the original's push of an asynchronous commit
			// races with the commit and often uploads only part of it; the interop
			// test covers pulling.)
			db, err := kv.Open("bench-read", serverOpts(srv, dir)...)
			if err != nil {
				return err
			}
			bench.kvRead = db
			if err := db.Update(func(b *kv.Batch) error {
				for i := range benchKeys {
					if err := b.Set(benchKey(i), value); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
			if n, err := db.PendingWrites(); err != nil || n != 0 {
				return fmt.Errorf("the binding left %d writes unpushed (%v)", n, err)
			}
			return nil
		}()
	})
	if bench.err != nil {
		b.Fatalf("benchmark setup: %v", bench.err)
	}
}

func BenchmarkGet(b *testing.B) {
	benchSetup(b)
	b.Run("charm-kv", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := bench.kvRead.Get(benchKey(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("badger", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := bench.origRead.Get(benchKey(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkKeys(b *testing.B) {
	benchSetup(b)
	b.Run("charm-kv", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if keys, err := bench.kvRead.Keys(); err != nil || len(keys) != benchKeys {
				b.Fatal(len(keys), err)
			}
		}
	})
	b.Run("badger", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if keys, err := bench.origRead.Keys(); err != nil || len(keys) != benchKeys {
				b.Fatal(len(keys), err)
			}
		}
	})
}

// BenchmarkSet writes locally, with no server involved: the binding in local mode,
// and for the original the Badger commit that its Set makes (its Set itself always
// talks to the server: see BenchmarkSetSync).
func BenchmarkSet(b *testing.B) {
	benchSetup(b)
	value := make([]byte, benchValue)
	b.Run("charm-kv", func(b *testing.B) {
		db, err := kv.Open("bench-set-charm-kv", kv.WithoutEnvironment(), kv.WithDataDir(bench.dir),
			kv.WithHost(charmtest.Host), kv.WithLocal(true))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := db.Set(benchKey(i), value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("badger", func(b *testing.B) {
		orig, err := openOriginal(bench.cc, "bench-set-badger")
		if err != nil {
			b.Fatal(err)
		}
		defer orig.Close()
		ts := orig.DB.MaxVersion()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ts++
			txn := orig.DB.NewTransactionAt(math.MaxUint64, true)
			if err := txn.Set(benchKey(i), value); err != nil {
				b.Fatal(err)
			}
			if err := txn.CommitAt(ts, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSetSync is Set as users of the original call it, against the server
// (each on a database of its own: the original cannot read charm-kv's snapshots):
// each write is committed and pushed (the binding with auto-push, uploading a
// snapshot of the database; the original drawing a sequence number and uploading
// a Badger backup of the change).
func BenchmarkSetSync(b *testing.B) {
	benchSetup(b)
	value := make([]byte, benchValue)
	b.Run("charm-kv", func(b *testing.B) {
		db, err := kv.Open("bench-sync-charm-kv", serverOpts(bench.srv, bench.dir)...)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := db.Set(benchKey(i), value); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if n, err := db.PendingWrites(); err != nil || n != 0 {
			b.Fatalf("%d writes not pushed: %v", n, err)
		}
	})
	b.Run("badger", func(b *testing.B) {
		orig, err := openOriginal(bench.cc, "bench-sync-badger")
		if err != nil {
			b.Fatal(err)
		}
		defer orig.Close()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := orig.Set(benchKey(i), value); err != nil {
				b.Fatal(err)
			}
		}
	})
}
