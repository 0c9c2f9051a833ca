//go:build !race

// The benchmarks run the original package in this process, which the race
// detector would fail (Badger v3.2103.2 races in DB.MaxVersion): they are left
// out of -race builds, where timings mean nothing anyway.

package compare_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/charm/client"
	charmkv "github.com/charmbracelet/charm/kv"
	badger "github.com/dgraph-io/badger/v3"

	"github.com/charm-kv/charm-kv/bindings/go/compare"
	"github.com/charm-kv/charm-kv/bindings/go/internal/charmtest"
	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// benchValue is the size of each value; keys are 16 bytes (benchKey).
const benchValue = 100

// benchKey is the 16-byte key number i.
func benchKey(i int) []byte { return []byte(fmt.Sprintf("key%013d", i)) }

// envSizes reads a comma-separated list of database sizes (numbers of keys) from the
// environment variable name, or returns def.
func envSizes(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var sizes []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s: %q is not a list of sizes", name, v)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// readSizes are the database sizes of BenchmarkGet and BenchmarkKeys: BENCH_SIZES
// (scripts/bench passes 10000,100000,1000000), 1000 keys by default.
func readSizes(b *testing.B) []int { return envSizes(b, "BENCH_SIZES", []int{1000}) }

// syncSizes are the database sizes of BenchmarkSetSync: BENCH_GO_SYNC_SIZES, by
// default 1000 and 100000 keys.
func syncSizes(b *testing.B) []int {
	return envSizes(b, "BENCH_GO_SYNC_SIZES", []int{1000, 100000})
}

// bench is the shared fixture: one server, one data directory (one account), and per
// size the original package and the binding on the same data.
var bench struct {
	once sync.Once
	err  error
	srv  *charmtest.Server
	dir  string
	cc   *client.Client

	mu   sync.Mutex
	read map[int]*readPair
}

// readPair is the same pairs in the original and in the binding.
type readPair struct {
	orig    *charmkv.KV
	kv      *kv.KV
	lookups [][]byte // present keys, in random order
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
			bench.read = map[int]*readPair{}
			bench.cc, err = client.NewClient(&client.Config{
				Host: charmtest.Host, SSHPort: srv.SSHPort, HTTPPort: srv.HTTPPort,
				KeyType: "ed25519", DataDir: dir,
			})
			return err
		}()
	})
	if bench.err != nil {
		b.Fatalf("benchmark setup: %v", bench.err)
	}
}

// readFixture returns the size-key databases read by BenchmarkGet and BenchmarkKeys,
// loading them on first use. Both are loaded locally (reads never touch the server):
// the original through Badger's managed write batch at one version, as its own Sync
// would leave the data, and the binding in batches, with auto-push off.
func readFixture(b *testing.B, size int) *readPair {
	b.Helper()
	benchSetup(b)
	bench.mu.Lock()
	defer bench.mu.Unlock()
	if p, ok := bench.read[size]; ok {
		return p
	}
	name := fmt.Sprintf("bench-read-%d", size)
	orig, err := openOriginal(bench.cc, name)
	if err != nil {
		b.Fatalf("open the original: %v", err)
	}
	value := make([]byte, benchValue)
	wb := orig.DB.NewManagedWriteBatch()
	for i := range size {
		if err := wb.SetEntryAt(badger.NewEntry(benchKey(i), value), 1); err != nil {
			b.Fatalf("load the original: %v", err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatalf("load the original: %v", err)
	}
	db, err := kv.Open(name, serverOpts(bench.srv, bench.dir, kv.WithAutoPush(false))...)
	if err != nil {
		b.Fatalf("open the binding: %v", err)
	}
	for start := 0; start < size; start += 50000 {
		if err := db.Update(func(batch *kv.Batch) error {
			for i := start; i < min(start+50000, size); i++ {
				if err := batch.Set(benchKey(i), value); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatalf("load the binding: %v", err)
		}
	}
	rng := rand.New(rand.NewPCG(7, uint64(size)))
	p := &readPair{orig: orig, kv: db}
	for range min(size, 100000) {
		p.lookups = append(p.lookups, benchKey(rng.IntN(size)))
	}
	bench.read[size] = p
	return p
}

// BenchmarkGet reads present keys in random order, on the same data in both, for
// each size of readSizes.
func BenchmarkGet(b *testing.B) {
	for _, size := range readSizes(b) {
		b.Run(fmt.Sprintf("keys=%d", size), func(b *testing.B) {
			p := readFixture(b, size)
			b.Run("charm-kv", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := p.kv.Get(p.lookups[i%len(p.lookups)]); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("badger", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := p.orig.Get(p.lookups[i%len(p.lookups)]); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkKeys lists every key, for each size of readSizes; it reports keys/s.
func BenchmarkKeys(b *testing.B) {
	for _, size := range readSizes(b) {
		b.Run(fmt.Sprintf("keys=%d", size), func(b *testing.B) {
			p := readFixture(b, size)
			list := map[string]func() ([][]byte, error){
				"charm-kv": p.kv.Keys,
				"badger":   p.orig.Keys,
			}
			for _, engine := range []string{"charm-kv", "badger"} {
				b.Run(engine, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if keys, err := list[engine](); err != nil || len(keys) != size {
							b.Fatal(len(keys), err)
						}
					}
					b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
				})
			}
		})
	}
}

// rawName names the raw SQLite peer as the binding's cases are named: "sqlite" with
// synchronous FULL (charm-kv's default durability), "sqlite-normal" with NORMAL.
func rawName(synchronous string) string {
	if synchronous == "FULL" {
		return "sqlite"
	}
	return "sqlite-normal"
}

// BenchmarkSet writes locally, with no server involved: the binding in local mode,
// and for the original the Badger commit that its Set makes (its Set itself always
// talks to the server: see BenchmarkSetSync).
func BenchmarkSet(b *testing.B) {
	benchSetup(b)
	value := make([]byte, benchValue)
	// "charm-kv" is the default durability (full: an fsync per commit).
	for _, d := range []struct {
		name       string
		durability kv.Durability
	}{{"charm-kv", kv.DurabilityFull}, {"charm-kv-normal", kv.DurabilityNormal}} {
		b.Run(d.name, func(b *testing.B) {
			db, err := kv.Open("bench-set-"+d.name, kv.WithoutEnvironment(), kv.WithDataDir(bench.dir),
				kv.WithHost(charmtest.Host), kv.WithLocal(true), kv.WithDurability(d.durability))
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
	}
	// SQLite alone, the floor of committing each write to SQLite: see rawsqlite.go.
	stored := make([]byte, compare.RawStoredValue)
	for _, synchronous := range []string{"FULL", "NORMAL"} {
		b.Run(rawName(synchronous), func(b *testing.B) {
			raw, err := compare.OpenRawSQLite(filepath.Join(bench.dir, "bench-set-"+rawName(synchronous)+".sqlite"), synchronous)
			if err != nil {
				b.Skip(err)
			}
			defer raw.Close()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := raw.Set(benchKey(i), stored); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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

// BenchmarkBatch commits batches of 1000 new keys (spread over the key space, as
// hashed keys would be) into a database already holding size pairs, for each size of
// BENCH_GO_BATCH_SIZES (default 10000 and 100000), in both durabilities and in the
// original (one Badger transaction committed at one version, as its Set does). It
// reports keys/s.
func BenchmarkBatch(b *testing.B) {
	benchSetup(b)
	value := make([]byte, benchValue)
	const batch = 1000
	newKey := func(size, i int) []byte { return benchKey(size + int(uint64(i)*0x9E3779B97F4A7C15>>20)) }
	for _, size := range envSizes(b, "BENCH_GO_BATCH_SIZES", []int{10000, 100000}) {
		b.Run(fmt.Sprintf("keys=%d", size), func(b *testing.B) {
			for _, d := range []struct {
				name       string
				durability kv.Durability
			}{{"charm-kv", kv.DurabilityFull}, {"charm-kv-normal", kv.DurabilityNormal}} {
				b.Run(d.name, func(b *testing.B) {
					name := fmt.Sprintf("bench-batch-%s-%d", d.name, size)
					db, err := kv.Open(name, kv.WithoutEnvironment(), kv.WithDataDir(bench.dir),
						kv.WithHost(charmtest.Host), kv.WithLocal(true), kv.WithDurability(d.durability))
					if err != nil {
						b.Fatal(err)
					}
					defer db.Close()
					if err := db.Update(func(w *kv.Batch) error {
						for i := range size {
							if err := w.Set(benchKey(i), value); err != nil {
								return err
							}
						}
						return nil
					}); err != nil {
						b.Fatal(err)
					}
					next := 0
					for b.Loop() {
						if err := db.Update(func(w *kv.Batch) error {
							for range batch {
								next++
								if err := w.Set(newKey(size, next), value); err != nil {
									return err
								}
							}
							return nil
						}); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
				})
			}
			stored := make([]byte, compare.RawStoredValue)
			for _, synchronous := range []string{"FULL", "NORMAL"} {
				b.Run(rawName(synchronous), func(b *testing.B) {
					path := filepath.Join(bench.dir, fmt.Sprintf("bench-batch-%s-%d.sqlite", rawName(synchronous), size))
					raw, err := compare.OpenRawSQLite(path, synchronous)
					if err != nil {
						b.Skip(err)
					}
					defer raw.Close()
					if err := raw.Batch(size, benchKey, stored); err != nil {
						b.Fatal(err)
					}
					next := 0
					for b.Loop() {
						if err := raw.Batch(batch, func(int) []byte { next++; return newKey(size, next) }, stored); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
				})
			}
			b.Run("badger", func(b *testing.B) {
				orig, err := openOriginal(bench.cc, fmt.Sprintf("bench-batch-badger-%d", size))
				if err != nil {
					b.Fatal(err)
				}
				defer orig.Close()
				wb := orig.DB.NewManagedWriteBatch()
				for i := range size {
					if err := wb.SetEntryAt(badger.NewEntry(benchKey(i), value), 1); err != nil {
						b.Fatal(err)
					}
				}
				if err := wb.Flush(); err != nil {
					b.Fatal(err)
				}
				ts := orig.DB.MaxVersion()
				next := 0
				for b.Loop() {
					ts++
					txn := orig.DB.NewTransactionAt(math.MaxUint64, true)
					for range batch {
						next++
						if err := txn.Set(newKey(size, next), value); err != nil {
							b.Fatal(err)
						}
					}
					if err := txn.CommitAt(ts, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
			})
		})
	}
}

// BenchmarkSetSync is Set as users of the original call it, against the server,
// on a database already holding size pairs (for each size of syncSizes; each engine
// on a database of its own: the original cannot read charm-kv's snapshots). Each write
// is committed and pushed: the binding with auto-push, uploading a snapshot of the
// database; the original drawing a sequence number and uploading a Badger backup of
// the change since its previous commit. Besides the mean (ns/op) it reports the
// median and 99th percentile latency (p50-ms, p99-ms); scripts/bench bounds the run
// with -benchtime=Nx.
func BenchmarkSetSync(b *testing.B) {
	benchSetup(b)
	value := make([]byte, benchValue)
	for _, size := range syncSizes(b) {
		b.Run(fmt.Sprintf("keys=%d", size), func(b *testing.B) {
			b.Run("charm-kv", func(b *testing.B) {
				db, err := kv.Open(fmt.Sprintf("bench-sync-%d-charm-kv", size),
					serverOpts(bench.srv, bench.dir)...)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				// The data, in one batch and one push, as a user would load it.
				if err := db.Update(func(batch *kv.Batch) error {
					for i := range size {
						if err := batch.Set(benchKey(i), value); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				measureSets(b, db.Set, value)
				if n, err := db.PendingWrites(); err != nil || n != 0 {
					b.Fatalf("%d writes not pushed: %v", n, err)
				}
			})
			b.Run("badger", func(b *testing.B) {
				orig, err := openOriginal(bench.cc, fmt.Sprintf("bench-sync-%d-badger", size))
				if err != nil {
					b.Fatal(err)
				}
				defer orig.Close()
				// The data through the original's own commits (each pushes a backup of
				// the change), 10k pairs per transaction to stay under Badger's limit.
				for start := 0; start < size; start += 10000 {
					txn, err := orig.NewTransaction(true)
					if err != nil {
						b.Fatal(err)
					}
					for i := start; i < min(start+10000, size); i++ {
						if err := txn.Set(benchKey(i), value); err != nil {
							b.Fatal(err)
						}
					}
					if err := orig.Commit(txn, nil); err != nil {
						b.Fatal(err)
					}
				}
				measureSets(b, orig.Set, value)
			})
		})
	}
}

// measureSets times set of new keys, one per iteration, after two untimed warm-up
// writes, and reports the median and 99th percentile latency.
func measureSets(b *testing.B, set func(key, value []byte) error, value []byte) {
	b.Helper()
	for i := range 2 {
		if err := set([]byte(fmt.Sprintf("warm%012d", i)), value); err != nil {
			b.Fatal(err)
		}
	}
	var latencies []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := set([]byte(fmt.Sprintf("set%013d", i)), value); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(latencies)
	percentile := func(p float64) float64 {
		at := int(math.Ceil(p*float64(len(latencies)))) - 1
		return float64(latencies[max(at, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(percentile(0.50), "p50-ms")
	b.ReportMetric(percentile(0.99), "p99-ms")
}
