package kv_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/internal/charmtest"
	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// identityOf is the SSH key the first open generated in dataDir: sharing it makes
// another data directory a second device of the same account.
func identityOf(dataDir string) string {
	return filepath.Join(dataDir, charmtest.Host, "charm_ed25519")
}

func TestSyncBetweenTwoDevicesWithProgress(t *testing.T) {
	srv := testServer(t)
	dir1, dir2 := clientDir(t, srv), clientDir(t, srv)+"-2"
	dev1, err := kv.Open("devices", serverOpts(srv, dir1)...)
	if err != nil {
		t.Fatal(err)
	}
	defer dev1.Close()
	if err := dev1.Set([]byte("foo"), []byte("from device 1")); err != nil {
		t.Fatal(err)
	}
	if n, err := dev1.PendingWrites(); err != nil || n != 0 {
		t.Fatalf("auto-push left %d pending writes (%v)", n, err)
	}

	dev2, err := kv.Open("devices", serverOpts(srv, dir2, kv.WithIdentityKey(identityOf(dir1)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer dev2.Close()
	var reports []kv.SyncProgress
	if err := dev2.SyncWithProgress(func(p kv.SyncProgress) { reports = append(reports, p) }); err != nil {
		t.Fatal(err)
	}
	if v, err := dev2.Get([]byte("foo")); err != nil || string(v) != "from device 1" {
		t.Fatalf("device 2 Get(foo) = %q, %v", v, err)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported for a download")
	}
	last := reports[len(reports)-1]
	if last.Phase != kv.SyncDownload || last.Done == 0 || (last.Total != 0 && last.Done != last.Total) {
		t.Errorf("last download report %+v", last)
	}
	if kv.SyncDownload.String() != "download" || kv.SyncUpload.String() != "upload" {
		t.Error("phase names")
	}

	// Device 2 overwrites and deletes in one batch; device 1 sees both after Sync.
	if err := dev2.Update(func(b *kv.Batch) error {
		b.Set([]byte("foo"), []byte("from device 2"))
		return b.Set([]byte("bar"), []byte{0, 1, 2})
	}); err != nil {
		t.Fatal(err)
	}
	if err := dev1.Sync(); err != nil {
		t.Fatal(err)
	}
	if v, _ := dev1.Get([]byte("foo")); string(v) != "from device 2" {
		t.Errorf("device 1 Get(foo) = %q", v)
	}
	if err := dev2.Delete([]byte("bar")); err != nil {
		t.Fatal(err)
	}
	if err := dev1.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := dev1.Get([]byte("bar")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("after Reset, deleted key: %v", err)
	}
}

func TestSyncUploadProgressAndBulkWrites(t *testing.T) {
	srv := testServer(t)
	dir := clientDir(t, srv)
	db, err := kv.Open("bulk", serverOpts(srv, dir, kv.WithAutoPush(false))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 100 {
		if err := db.Set([]byte(fmt.Sprintf("k%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := db.PendingWrites(); n != 100 {
		t.Fatalf("PendingWrites = %d, want 100", n)
	}
	var uploads int
	var last kv.SyncProgress
	if err := db.SyncWithProgress(func(p kv.SyncProgress) {
		if p.Phase == kv.SyncUpload {
			uploads++
			last = p
		}
	}); err != nil {
		t.Fatal(err)
	}
	if uploads == 0 || last.Done == 0 || last.Done != last.Total {
		t.Errorf("%d upload reports, last %+v", uploads, last)
	}
	if n, _ := db.PendingWrites(); n != 0 {
		t.Errorf("PendingWrites after Sync = %d", n)
	}
}

// A panic in the progress callback does not unwind through the library: it is
// recovered in the trampoline and raised again once the sync has returned.
func TestSyncProgressPanicIsRaisedAfterTheCall(t *testing.T) {
	srv := testServer(t)
	db, err := kv.Open("panicky", serverOpts(srv, clientDir(t, srv), kv.WithAutoPush(false))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	type marker struct{ n int }
	calls := 0
	got := func() (r any) {
		defer func() { r = recover() }()
		db.SyncWithProgress(func(kv.SyncProgress) {
			calls++
			panic(marker{42})
		})
		return nil
	}()
	if got != (marker{42}) {
		t.Fatalf("recovered %#v, want the callback's panic value", got)
	}
	if calls != 1 {
		t.Errorf("callback called %d times after panicking, want 1", calls)
	}
	// The sync itself ran to its end, and the store works.
	if n, err := db.PendingWrites(); err != nil || n != 0 {
		t.Errorf("PendingWrites after the sync = %d, %v", n, err)
	}
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Errorf("Get after the panic = %q, %v", v, err)
	}
	// A nil callback is a plain Sync.
	if err := db.SyncWithProgress(nil); err != nil {
		t.Error(err)
	}
}

// Syncs, writes and progress callbacks from several goroutines on one handle.
func TestConcurrentSyncAndWrites(t *testing.T) {
	srv := testServer(t)
	db, err := kv.Open("concurrent", serverOpts(srv, clientDir(t, srv), kv.WithAutoPush(false))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := db.Set([]byte(fmt.Sprintf("w%d-%d", w, i)), []byte("v")); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			var n int
			for range 2 {
				if err := db.SyncWithProgress(func(kv.SyncProgress) { n++ }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.PendingWrites(); n != 0 {
		t.Errorf("PendingWrites = %d", n)
	}
	if keys, _ := db.Keys(); len(keys) != 80 {
		t.Errorf("%d keys, want 80", len(keys))
	}
}
