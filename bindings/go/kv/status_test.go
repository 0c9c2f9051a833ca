package kv_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

func TestStatusOfALocalDatabase(t *testing.T) {
	db := openLocal(t)
	for _, k := range []string{"a", "b"} {
		if err := db.Set([]byte(k), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	s, err := db.StatusWithRemote()
	if err != nil {
		t.Fatal(err)
	}
	if !s.LastSync.IsZero() || s.LastSyncVersion != 0 || s.LocalVersion != 0 {
		t.Errorf("never synced, got %+v", s)
	}
	if s.PendingWrites != 2 || s.SizeBytes == 0 || s.IntegrityError != nil {
		t.Errorf("local fields %+v", s)
	}
	if s.Remote != kv.RemoteNotConfigured || s.RemoteError != nil || s.Remote.String() != "not configured" {
		t.Errorf("local mode asks no one: %+v", s)
	}
	synced, err := db.SyncIfStale(time.Hour)
	if !errors.Is(err, kv.ErrNotConfigured) || synced {
		t.Errorf("SyncIfStale in local mode = %v, %v", synced, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Status(); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Status after Close: %v", err)
	}
	if _, err := db.SyncIfStale(0); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("SyncIfStale after Close: %v", err)
	}
}

func TestStatusReportsAnUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	db, err := kv.Open("status", localOpts(t, kv.WithHost("127.0.0.1"), kv.WithSSHPort(port),
		kv.WithHTTPPort(port), kv.WithAutoPush(false))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Status()
	if err != nil || s.Remote != kv.RemoteNotChecked {
		t.Fatalf("Status = %+v, %v", s, err)
	}
	s, err = db.StatusWithRemote()
	if err != nil {
		t.Fatal(err)
	}
	if s.Remote != kv.RemoteUnreachable || !errors.Is(s.RemoteError, kv.ErrNetwork) {
		t.Errorf("unreachable server: %+v", s)
	}
}

func TestStatusAndSyncIfStaleAgainstTheServer(t *testing.T) {
	srv := testServer(t)
	dir1, dir2 := clientDir(t, srv), clientDir(t, srv)+"-2"
	dev1, err := kv.Open("status", serverOpts(srv, dir1)...)
	if err != nil {
		t.Fatal(err)
	}
	defer dev1.Close()
	dev2, err := kv.Open("status", serverOpts(srv, dir2, kv.WithIdentityKey(identityOf(dir1)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer dev2.Close()

	if err := dev1.Set([]byte("k1"), []byte("v1")); err != nil { // pushed
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if synced, err := dev2.SyncIfStale(time.Hour); err != nil || !synced {
		t.Fatalf("first SyncIfStale = %v, %v; never synced, so due", synced, err)
	}
	s, err := dev2.StatusWithRemote()
	if err != nil {
		t.Fatal(err)
	}
	if s.LastSync.Before(before) || s.LastSyncVersion != s.LocalVersion || s.LocalVersion == 0 {
		t.Errorf("after a sync: %+v", s)
	}
	if s.Remote != kv.RemoteReachable || s.RemoteVersion != s.LocalVersion {
		t.Errorf("remote after a sync: %+v", s)
	}

	if err := dev1.Set([]byte("k2"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if synced, err := dev2.SyncIfStale(time.Hour); err != nil || synced {
		t.Fatalf("fresh SyncIfStale = %v, %v; want skipped", synced, err)
	}
	if _, err := dev2.Get([]byte("k2")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("a skipped sync pulled k2: %v", err)
	}
	behind, err := dev2.StatusWithRemote()
	if err != nil {
		t.Fatal(err)
	}
	if behind.RemoteVersion <= behind.LocalVersion {
		t.Errorf("the server should be ahead: %+v", behind)
	}
	if synced, err := dev2.SyncIfStale(0); err != nil || !synced {
		t.Fatalf("SyncIfStale(0) = %v, %v; want synced", synced, err)
	}
	if v, err := dev2.Get([]byte("k2")); err != nil || string(v) != "v2" {
		t.Errorf("Get(k2) = %q, %v", v, err)
	}
}
