package kv_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// A backup made by BackupKeys imports elsewhere; another identity needs force; the
// account calls need a server.
func TestBackupAndImportKeys(t *testing.T) {
	one, two := localOpts(t), localOpts(t)
	db, err := kv.Open("db", one...)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	backup, err := kv.BackupKeys(false, one...)
	if err != nil || !bytes.Equal(backup[257:262], []byte("ustar")) {
		t.Fatalf("BackupKeys = %d bytes, %v", len(backup), err)
	}
	if err := kv.ImportKeys(backup, false, two...); err != nil {
		t.Fatal(err)
	}
	if err := kv.ImportKeys([]byte("not a key"), true, two...); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Fatalf("ImportKeys(garbage) = %v", err)
	}
	if _, err := kv.AccountID(two...); !errors.Is(err, kv.ErrNotConfigured) {
		t.Fatalf("AccountID in local mode = %v", err)
	}
}

// LinkGenerate on one device, LinkRequest on another: one account, data on both.
func TestLinkTwoDevices(t *testing.T) {
	srv := testServer(t)
	dir1, dir2 := clientDir(t, srv), clientDir(t, srv)+"-2"
	dev1, err := kv.Open("linked", serverOpts(srv, dir1)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev1.Set([]byte("k"), []byte("from one")); err != nil {
		t.Fatal(err)
	}
	dev1.Close()

	codes := make(chan string, 1)
	type result struct {
		outcome kv.LinkOutcome
		err     error
	}
	done := make(chan result, 1)
	go func() {
		outcome, err := kv.LinkGenerate(
			func(code string) { codes <- code },
			func(key, address string) bool { return key != "" },
			time.Minute, serverOpts(srv, dir1)...)
		done <- result{outcome, err}
	}()
	code := <-codes
	if _, err := kv.LinkRequest("ZZZZZZ", time.Minute, serverOpts(srv, dir2)...); !errors.Is(err, kv.ErrLink) {
		t.Fatalf("LinkRequest(invalid) = %v", err)
	}
	if outcome, err := kv.LinkRequest(code, time.Minute, serverOpts(srv, dir2)...); err != nil || outcome != kv.Linked {
		t.Fatalf("LinkRequest = %v, %v", outcome, err)
	}
	if r := <-done; r.err != nil || r.outcome != kv.Linked {
		t.Fatalf("LinkGenerate = %v, %v", r.outcome, r.err)
	}
	id1, err1 := kv.AccountID(serverOpts(srv, dir1)...)
	id2, err2 := kv.AccountID(serverOpts(srv, dir2)...)
	if err1 != nil || err2 != nil || id1 != id2 {
		t.Fatalf("AccountID: %q (%v) vs %q (%v)", id1, err1, id2, err2)
	}
	keys, err := kv.AccountKeys(serverOpts(srv, dir2)...)
	if err != nil || len(keys) != 2 || keys[0].ThisDevice == keys[1].ThisDevice {
		t.Fatalf("AccountKeys = %+v, %v", keys, err)
	}
	dev2, err := kv.Open("linked", serverOpts(srv, dir2)...)
	if err != nil {
		t.Fatal(err)
	}
	defer dev2.Close()
	if err := dev2.Sync(); err != nil {
		t.Fatal(err)
	}
	if v, err := dev2.Get([]byte("k")); err != nil || string(v) != "from one" {
		t.Fatalf("Get(k) on device 2 = %q, %v", v, err)
	}
}

// A context cancelled while the generator waits for a requester, and one cancelled
// while the requester waits for the confirmation, each end that link with ErrLink
// ("cancelled", errors.Is context.Canceled); the account keeps its one key.
func TestLinkContextCancel(t *testing.T) {
	srv := testServer(t)
	dir1, dir2 := clientDir(t, srv), clientDir(t, srv)+"-2"
	if _, err := kv.AccountID(serverOpts(srv, dir1)...); err != nil {
		t.Fatal(err)
	}
	cancelled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, kv.ErrLink) || !errors.Is(err, context.Canceled) ||
			!strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("%s = %v, want ErrLink cancelled", what, err)
		}
	}

	// The generator, cancelled from another goroutine once it shows its code.
	ctx, cancel := context.WithCancel(context.Background())
	codes := make(chan string, 1)
	go func() {
		<-codes
		cancel()
	}()
	_, err := kv.LinkGenerateContext(ctx, func(code string) { codes <- code },
		func(key, address string) bool { return true }, time.Minute, serverOpts(srv, dir1)...)
	cancelled("LinkGenerateContext", err)

	// The requester, cancelled while the generator is asked to confirm it.
	codes = make(chan string, 1)
	confirming := make(chan struct{})
	requesterDone := make(chan struct{})
	generated := make(chan error, 1)
	go func() {
		_, err := kv.LinkGenerate(func(code string) { codes <- code },
			func(key, address string) bool {
				close(confirming)
				<-requesterDone
				return false
			}, time.Minute, serverOpts(srv, dir1)...)
		generated <- err
	}()
	code := <-codes
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-confirming
		cancel()
	}()
	_, err = kv.LinkRequestContext(ctx, code, time.Minute, serverOpts(srv, dir2)...)
	close(requesterDone)
	cancelled("LinkRequestContext", err)
	if err := <-generated; !errors.Is(err, kv.ErrLink) {
		t.Fatalf("LinkGenerate after the requester left = %v", err)
	}

	keys, err := kv.AccountKeys(serverOpts(srv, dir1)...)
	if err != nil || len(keys) != 1 || !keys[0].ThisDevice {
		t.Fatalf("AccountKeys after cancelled links = %+v, %v", keys, err)
	}
}
