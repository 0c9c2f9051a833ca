package kv_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// Many goroutines share one handle: writes, reads, listings, iterators and batches
// at once, under the race detector.
func TestManyGoroutinesOneHandle(t *testing.T) {
	db := openLocal(t)
	const workers, rounds = 16, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				for i := range rounds {
					key := []byte(fmt.Sprintf("w%02d-%03d", w, i))
					val := []byte(fmt.Sprintf("value %d of worker %d", i, w))
					if err := db.Set(key, val); err != nil {
						return err
					}
					got, err := db.Get(key)
					if err != nil {
						return err
					}
					if string(got) != string(val) {
						return fmt.Errorf("Get(%s) = %q, want %q", key, got, val)
					}
					switch i % 15 {
					case 0:
						if _, err := db.Keys(); err != nil {
							return err
						}
					case 5:
						it, err := db.NewIterator(kv.IteratorOptions{Reverse: w%2 == 0})
						if err != nil {
							return err
						}
						for range it.All() {
						}
						if err := it.Err(); err != nil {
							return err
						}
						it.Close()
					case 10:
						if err := db.Update(func(b *kv.Batch) error {
							b.Set([]byte(fmt.Sprintf("batch-%02d-%03d", w, i)), val)
							return b.Delete(key)
						}); err != nil {
							return err
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	// Every round wrote a key; rounds 10, 25, 40, 55 moved theirs to a batch- key.
	if want := workers * rounds; len(keys) != want {
		t.Errorf("%d keys, want %d", len(keys), want)
	}
}

// Close while other goroutines use the handle: each call either completes or
// fails with ErrClosed, and nothing crashes.
func TestCloseWhileInUse(t *testing.T) {
	db, err := kv.Open("busy", localOpts(t)...)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, 20)
	var wg sync.WaitGroup
	var calls, closed atomic.Int64
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 4 {
				case 0:
					err = db.Set([]byte(fmt.Sprintf("k%d", w)), []byte("v"))
				case 1:
					_, err = db.Get([]byte("key0001"))
				case 2:
					_, err = db.Keys()
				case 3:
					var it *kv.Iterator
					if it, err = db.NewIterator(kv.IteratorOptions{}); err == nil {
						for it.Next() {
						}
						err = it.Err()
						it.Close()
					}
				}
				calls.Add(1)
				if errors.Is(err, kv.ErrClosed) {
					closed.Add(1)
				} else if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		}()
	}
	// On a loaded machine goroutines may not run for a while: wait for calls before
	// the close, and for calls that meet the closed handle after it (bounded).
	waitFor := func(what string, done func() bool) {
		for deadline := time.Now().Add(time.Minute); !done(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after a minute: %s", what)
			}
		}
	}
	waitFor("no call before the close", func() bool { return calls.Load() >= 8 })
	if err := db.Close(); err != nil {
		t.Error(err)
	}
	waitFor("no call met the closed handle", func() bool { return closed.Load() > 0 })
	close(stop)
	wg.Wait()
	if closed.Load() == 0 || calls.Load() == closed.Load() {
		t.Errorf("%d calls, %d ErrClosed: the race was not exercised", calls.Load(), closed.Load())
	}
	if err := db.Close(); err != nil {
		t.Error(err)
	}
}

// Goroutines sharing one iterator or one batch are serialised, never unsafe.
func TestSharedIteratorAndBatch(t *testing.T) {
	db := openLocal(t)
	fill(t, db, 200)
	it, err := db.NewIterator(kv.IteratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	b, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it.Next() {
				seen.Add(1)
				_ = it.Key()
			}
			for i := range 50 {
				b.Set([]byte(fmt.Sprintf("b%d-%d", w, i)), nil)
			}
		}()
	}
	wg.Wait()
	if seen.Load() != 200 {
		t.Errorf("goroutines saw %d pairs together, want 200", seen.Load())
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.Keys(); len(keys) != 400 {
		t.Errorf("%d keys after the shared batch, want 400", len(keys))
	}
}

// Handles, iterators and batches dropped without Close are released by their
// cleanups: the database files they held open are closed.
func TestDroppedHandlesAreCleanedUp(t *testing.T) {
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd to count open files")
	}
	opts := localOpts(t)
	warm, err := kv.Open("dropped", opts...)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, warm, 5)
	warm.Close()
	settle := func() int {
		for range 5 {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		fds, _ := os.ReadDir("/proc/self/fd")
		return len(fds)
	}
	before := settle()
	func() {
		for range 10 {
			db, err := kv.Open("dropped", opts...)
			if err != nil {
				t.Fatal(err)
			}
			it, err := db.NewIterator(kv.IteratorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			it.Next()
			b, err := db.NewBatch()
			if err != nil {
				t.Fatal(err)
			}
			b.Set([]byte("uncommitted"), nil)
			// db, it and b become unreachable here, unclosed.
		}
	}()
	opened := func() int { fds, _ := os.ReadDir("/proc/self/fd"); return len(fds) }()
	// Cleanups run on their own goroutine after a GC: on a loaded machine, give them
	// time (bounded) rather than fail.
	after := settle()
	for deadline := time.Now().Add(30 * time.Second); after > before+2 && time.Now().Before(deadline); {
		after = settle()
	}
	t.Logf("open files: %d before, %d with 10 dropped handles, %d after GC", before, opened, after)
	if opened <= before {
		t.Fatalf("opening 10 handles opened no file (%d, then %d)", before, opened)
	}
	if after > before+2 {
		t.Errorf("open files: %d before, %d after dropping 10 handles: cleanups did not run", before, after)
	}
	// The uncommitted batches wrote nothing.
	db, err := kv.Open("dropped", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Get([]byte("uncommitted")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("a dropped batch was committed: %v", err)
	}
}

// Goroutines that open databases of a fresh data directory at once agree on one SSH
// identity and one encrypt key: every acknowledged write reads back from a handle
// opened afterwards (issue 15; before the account lock, racing first keys made all
// but one database unreadable).
func TestGoroutinesOnAFreshDataDirKeepEveryWrite(t *testing.T) {
	opts := localOpts(t)
	const goroutines = 16
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := kv.Open(fmt.Sprintf("db%d", i%4), opts...)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = db.Set([]byte(fmt.Sprintf("k%d", i)), []byte(fmt.Sprintf("v%d", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v", i, err)
		}
	}
	for i := range goroutines {
		db, err := kv.Open(fmt.Sprintf("db%d", i%4), opts...)
		if err != nil {
			t.Fatalf("reopening db%d: %v", i%4, err)
		}
		v, err := db.Get([]byte(fmt.Sprintf("k%d", i)))
		db.Close()
		if err != nil || string(v) != fmt.Sprintf("v%d", i) {
			t.Errorf("k%d@db%d = %q, %v; want v%d", i, i%4, v, err, i)
		}
	}
}
