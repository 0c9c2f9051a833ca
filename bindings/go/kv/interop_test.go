package kv_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// A user switches from the original package to the binding: data the original
// (Badger) wrote and pushed to the server is read by the binding after Sync, both
// configured only by the CHARM_* environment, in one data directory.
func TestInteropOriginalWritesBindingReads(t *testing.T) {
	srv := testServer(t)
	dir := clientDir(t, srv)
	env := srv.ClientEnv(dir)
	const name = "charm.sh.kv.interop"

	binKey, binValue := []byte{0, 1, 2, 0xff, 0xfe}, []byte{0xde, 0xad, 0, 0xbe, 0xef}
	want := map[string][]byte{
		"foo":          []byte("bar"),
		string(binKey): binValue,
		"empty":        {},
	}
	for k, v := range want {
		original(t, env, name, "set", []byte(k), v)
	}
	original(t, env, name, "set", []byte("gone"), []byte("soon"))
	original(t, env, name, "delete", []byte("gone"))

	setEnv(t, env)
	db, err := kv.OpenWithDefaults(name)
	if err != nil {
		t.Fatalf("OpenWithDefaults: %v", err)
	}
	defer db.Close()
	if err := db.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	for k, v := range want {
		got, err := db.Get([]byte(k))
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if !bytes.Equal(got, v) {
			t.Errorf("Get(%q) = %q, want %q", k, got, v)
		}
	}
	if _, err := db.Get([]byte("gone")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get(deleted key): %v, want ErrNotFound", err)
	}
	keys, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Errorf("Keys() = %q, want %d keys", keys, len(want))
	}
}
