package kv_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// WithReadOnly reads an existing database and refuses every write with ErrReadOnly.
func TestReadOnlyReadsAndRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	opts := []kv.Option{kv.WithoutEnvironment(), kv.WithDataDir(dir)}
	db, err := kv.Open("test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The account's cached identity and key open it; nothing is asked or created.
	ro, err := kv.Open("test", append(opts, kv.WithReadOnly())...)
	if err != nil {
		t.Fatalf("Open WithReadOnly: %v", err)
	}
	defer ro.Close()
	if v, err := ro.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	batch, err := ro.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Set([]byte("b"), []byte("B")); err != nil {
		t.Fatal(err)
	}
	writes := map[string]error{
		"Set":            ro.Set([]byte("k"), []byte("w")),
		"Delete":         ro.Delete([]byte("k")),
		"Commit":         batch.Commit(),
		"Sync":           ro.Sync(),
		"Reset":          ro.Reset(),
		"DeleteDatabase": kv.DeleteDatabase("test", append(opts, kv.WithReadOnly())...),
	}
	for what, err := range writes {
		if !errors.Is(err, kv.ErrReadOnly) {
			t.Errorf("%s = %v, want ErrReadOnly", what, err)
		}
	}
	if v, err := ro.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Errorf("Get after refused writes = %q, %v", v, err)
	}
}

// A read-only open of a missing database is ErrNotFound and creates nothing.
func TestReadOnlyCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := kv.Open("absent", kv.WithoutEnvironment(), kv.WithDataDir(dir),
		kv.WithEncryptKey([]byte(readOnlyKey)), kv.WithReadOnly())
	if !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Open = %v, want ErrNotFound", err)
	}
	_, err = kv.Open("absent", kv.WithoutEnvironment(), kv.WithDataDir(dir), kv.WithReadOnly())
	if !errors.Is(err, kv.ErrKeys) {
		t.Errorf("Open without keys = %v, want ErrKeys", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data dir exists: %v", err)
	}
}

// readOnlyKey is a Charm encrypt key (base64 text), so no identity is needed.
const readOnlyKey = "c2VjcmV0LWtleS1mb3ItdGhlLWNoYXJtLWt2LWdvLXRlc3RzLTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA=="
