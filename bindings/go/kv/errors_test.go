package kv_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charm-kv/charm-kv/bindings/go/internal/charmtest"
	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

var allSentinels = map[kv.Status]error{
	kv.StatusNotFound:        kv.ErrNotFound,
	kv.StatusInvalidArgument: kv.ErrInvalidArgument,
	kv.StatusIO:              kv.ErrIO,
	kv.StatusCorrupt:         kv.ErrCorrupt,
	kv.StatusKeys:            kv.ErrKeys,
	kv.StatusAuth:            kv.ErrAuth,
	kv.StatusNetwork:         kv.ErrNetwork,
	kv.StatusServer:          kv.ErrServer,
	kv.StatusBusy:            kv.ErrBusy,
	kv.StatusClosed:          kv.ErrClosed,
	kv.StatusNotConfigured:   kv.ErrNotConfigured,
	kv.StatusPendingWrites:   kv.ErrPendingWrites,
	kv.StatusPanic:           kv.ErrPanic,
	kv.StatusInternal:        kv.ErrInternal,
	kv.StatusReadOnly:        kv.ErrReadOnly,
	kv.StatusLink:            kv.ErrLink,
}

// Every status has its sentinel, and an *Error matches exactly that one.
func TestErrorMatchesOnlyItsSentinel(t *testing.T) {
	if len(allSentinels) != 16 {
		t.Fatalf("%d sentinels", len(allSentinels))
	}
	for status := range allSentinels {
		e := &kv.Error{Status: status, Message: "detail"}
		wrapped := fmt.Errorf("context: %w", e)
		for other, sentinel := range allSentinels {
			if got := errors.Is(wrapped, sentinel); got != (other == status) {
				t.Errorf("errors.Is(Error{%v}, sentinel of %v) = %v", status, other, got)
			}
		}
		if e.Error() != "charm-kv: detail" {
			t.Errorf("Error() = %q", e.Error())
		}
		if s := status.String(); s == "" || s == "unknown status" {
			t.Errorf("Status(%d).String() = %q", status, s)
		}
		if want := "charm-kv: " + status.String(); allSentinels[status].Error() != want {
			t.Errorf("sentinel of %d says %q, want %q", status, allSentinels[status].Error(), want)
		}
	}
	// A status from a newer library counts as internal.
	unknown := &kv.Error{Status: 999, Message: "new"}
	if !errors.Is(unknown, kv.ErrInternal) || errors.Is(unknown, kv.ErrNotFound) {
		t.Error("unknown status does not match ErrInternal only")
	}
	if kv.Status(999).String() != "unknown status" {
		t.Errorf("Status(999).String() = %q", kv.Status(999).String())
	}
	if kv.StatusNotFound.String() != "not found" {
		t.Errorf("StatusNotFound.String() = %q", kv.StatusNotFound.String())
	}
	// The sentinels are distinct values and do not match each other.
	if errors.Is(kv.ErrNotFound, kv.ErrClosed) || !errors.Is(kv.ErrNotFound, kv.ErrNotFound) {
		t.Error("sentinels compare wrongly")
	}
}

// wantErr checks that err is an *Error of the sentinel's category with the
// library's message.
func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s = %v, want %v", what, err, sentinel)
		return
	}
	var e *kv.Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Errorf("%s = %#v, want an *Error with a message", what, err)
		return
	}
	t.Logf("%s: %v", what, err)
}

func TestErrorsLocal(t *testing.T) {
	db := openLocal(t)
	_, err := db.Get([]byte("missing"))
	wantErr(t, "Get(missing)", err, kv.ErrNotFound)

	// The empty name is not among them: it opens DefaultName, as `charm kv` does.
	for _, name := range []string{"../x", "a/b", `a\b`, ".", "..", "tab\there", strings.Repeat("n", 201), "nul\x00"} {
		_, err := kv.Open(name, localOpts(t)...)
		wantErr(t, fmt.Sprintf("Open(%q)", name), err, kv.ErrInvalidArgument)
	}
	for _, port := range []int{0, -1, 65536} {
		_, err := kv.Open("x", localOpts(t, kv.WithSSHPort(port))...)
		wantErr(t, fmt.Sprintf("WithSSHPort(%d)", port), err, kv.ErrInvalidArgument)
	}
	_, err = kv.Open("x", localOpts(t, kv.WithKeyType("dsa"))...)
	wantErr(t, "WithKeyType(dsa)", err, kv.ErrInvalidArgument)
	_, err = kv.Open("x", localOpts(t, kv.WithHost("bad/host"))...)
	wantErr(t, "WithHost(bad/host)", err, kv.ErrInvalidArgument)
	_, err = kv.Open("x", localOpts(t, kv.WithDataDir(""))...)
	wantErr(t, "WithDataDir(\"\")", err, kv.ErrInvalidArgument)

	// A short encrypt key is a bad argument, like every bad option.
	_, err = kv.Open("x", localOpts(t, kv.WithEncryptKey([]byte("short")))...)
	wantErr(t, "WithEncryptKey(short)", err, kv.ErrInvalidArgument)

	// The data directory is a file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = kv.Open("x", kv.WithoutEnvironment(), kv.WithDataDir(file))
	wantErr(t, "Open in a data dir that is a file", err, kv.ErrIO)

	// Not a database.
	dir := t.TempDir()
	kvDir := filepath.Join(dir, "localhost", "charm-kv")
	if err := os.MkdirAll(kvDir, 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := []byte(strings.Repeat("this is not an SQLite database. ", 200))
	if err := os.WriteFile(filepath.Join(kvDir, "junk.sqlite"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = kv.Open("junk", kv.WithoutEnvironment(), kv.WithDataDir(dir))
	wantErr(t, "Open(garbage file)", err, kv.ErrCorrupt)

	// No server in local mode.
	wantErr(t, "Sync in local mode", db.Sync(), kv.ErrNotConfigured)
	wantErr(t, "Reset in local mode", db.Reset(), kv.ErrNotConfigured)
	wantErr(t, "ForceReset in local mode", db.ForceReset(), kv.ErrNotConfigured)
	local := openLocal(t, kv.WithHost(charmtest.Host), kv.WithLocal(true))
	wantErr(t, "Sync with WithLocal(true)", local.Sync(), kv.ErrNotConfigured)

	db.Close()
	_, err = db.Get([]byte("k"))
	wantErr(t, "Get after Close", err, kv.ErrClosed)
}

func TestErrorsWithServer(t *testing.T) {
	srv := testServer(t)

	// Unpushed writes block a Reset; ForceReset drops them.
	db, err := kv.Open("pending", serverOpts(srv, clientDir(t, srv), kv.WithAutoPush(false))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Set([]byte("unpushed"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PendingWrites(); err != nil || n != 1 {
		t.Errorf("PendingWrites = %d, %v", n, err)
	}
	wantErr(t, "Reset with a pending write", db.Reset(), kv.ErrPendingWrites)
	if err := db.ForceReset(); err != nil {
		t.Fatalf("ForceReset: %v", err)
	}
	_, err = db.Get([]byte("unpushed"))
	wantErr(t, "Get after ForceReset", err, kv.ErrNotFound)

	// Nobody listens on the port.
	l, err := net.Listen("tcp", charmtest.Host+":0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()
	err = func() error {
		db, err := kv.Open("network", kv.WithoutEnvironment(), kv.WithDataDir(t.TempDir()),
			kv.WithHost(charmtest.Host), kv.WithSSHPort(dead), kv.WithHTTPPort(dead))
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Sync()
	}()
	wantErr(t, "Sync with no server listening", err, kv.ErrNetwork)

	// A pinned host key that the server does not have.
	dir := clientDir(t, srv)
	dataPath := filepath.Join(dir, charmtest.Host)
	if err := os.MkdirAll(dataPath, 0o700); err != nil {
		t.Fatal(err)
	}
	pin := fmt.Sprintf("%s:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPq2i2wFVcGhJ2T1u1tHkBzFyIhd6cS8aC0vA6jHqzBk\n", charmtest.Host, srv.SSHPort)
	if err := os.WriteFile(filepath.Join(dataPath, "charm_kv_known_hosts"), []byte(pin), 0o600); err != nil {
		t.Fatal(err)
	}
	err = func() error {
		db, err := kv.Open("auth", serverOpts(srv, dir)...)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Sync()
	}()
	wantErr(t, "Sync against a changed host key", err, kv.ErrAuth)
}

// A server that refuses uploads (a storage quota of one byte) answers with an error.
func TestErrorServer(t *testing.T) {
	srv, err := charmtest.Start("CHARM_SERVER_USER_MAX_STORAGE=1")
	if err != nil {
		t.Fatalf("cannot start the Charm server: %v", err)
	}
	defer srv.Stop()
	dir, err := srv.ClientDir("quota")
	if err != nil {
		t.Fatal(err)
	}
	// Without auto-push, so that one push fails (a failed auto-push wastes a
	// sequence ticket, which the next push then waits for).
	db, err := kv.Open("quota", serverOpts(srv, dir, kv.WithAutoPush(false))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatalf("Set: %v", err)
	}
	wantErr(t, "Sync over quota", db.Sync(), kv.ErrServer)
	// The write stays durable locally and pending.
	if n, err := db.PendingWrites(); err != nil || n != 1 {
		t.Errorf("PendingWrites after a refused push = %d, %v", n, err)
	}
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Errorf("Get after a refused push = %q, %v", v, err)
	}
}

// A server that accepts connections and never answers holds no write: it returns
// within the bounds, committed and pending.
func TestBlackHoledServerLeavesTheWritePending(t *testing.T) {
	hole, err := net.Listen("tcp", charmtest.Host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := hole.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	port := hole.Addr().(*net.TCPAddr).Port
	type outcome struct {
		pending uint64
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		db, err := kv.Open("hole", kv.WithoutEnvironment(), kv.WithDataDir(t.TempDir()),
			kv.WithHost(charmtest.Host), kv.WithSSHPort(port), kv.WithHTTPPort(port),
			kv.WithTimeouts(time.Second, time.Second, 2500*time.Millisecond))
		if err != nil {
			done <- outcome{err: err}
			return
		}
		defer db.Close()
		if err := db.Set([]byte("k"), []byte("v")); err != nil {
			done <- outcome{err: err}
			return
		}
		n, err := db.PendingWrites()
		done <- outcome{n, err}
	}()
	select {
	case got := <-done:
		if got.err != nil || got.pending != 1 {
			t.Fatalf("Set against a black hole: pending %d, %v; want 1 pending write", got.pending, got.err)
		}
	case <-time.After(2 * time.Minute): // far above the bounds: fail rather than hang
		t.Fatal("Set against a black hole never returned")
	}

	_, err = kv.Open("x", kv.WithoutEnvironment(), kv.WithDataDir(t.TempDir()),
		kv.WithTimeouts(0, 0, 400*24*time.Hour))
	wantErr(t, "a sync bound above a year", err, kv.ErrInvalidArgument)
}
