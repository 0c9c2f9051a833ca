package kv_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// rangeKeys are stored by setRangeKeys: prefixes of one another, and neighbours.
var rangeKeys = []string{"a", "app", "apple", "apply", "apt", "b", "ba"}

func setRangeKeys(t *testing.T, db *kv.KV) {
	t.Helper()
	for _, k := range rangeKeys {
		if err := db.Set([]byte(k), []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
}

func joined(keys [][]byte) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = string(k)
	}
	return strings.Join(parts, ",")
}

// iterated runs an Iterator with opts and returns its keys, checking each value.
func iterated(t *testing.T, db *kv.KV, opts kv.IteratorOptions) string {
	t.Helper()
	it, err := db.NewIterator(opts)
	if err != nil {
		t.Fatalf("%+v: %v", opts, err)
	}
	defer it.Close()
	var keys [][]byte
	for k, v := range it.All() {
		if !opts.KeysOnly && string(v) != "v-"+string(k) {
			t.Errorf("%+v: value of %q is %q", opts, k, v)
		}
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("%+v: %v", opts, err)
	}
	return joined(keys)
}

func TestKeysWithPrefix(t *testing.T) {
	db := openLocal(t)
	setRangeKeys(t, db)
	for _, c := range []struct{ prefix, want string }{
		{"", "a,app,apple,apply,apt,b,ba"},
		{"a", "a,app,apple,apply,apt"},
		{"app", "app,apple,apply"},
		{"apple", "apple"},
		{"b", "b,ba"},
		{"c", ""},
		{"applez", ""},
	} {
		keys, err := db.KeysWithPrefix([]byte(c.prefix))
		if err != nil {
			t.Fatalf("prefix %q: %v", c.prefix, err)
		}
		if got := joined(keys); got != c.want {
			t.Errorf("KeysWithPrefix(%q) = %s, want %s", c.prefix, got, c.want)
		}
	}
	// nil is the empty prefix; a write is seen by the next listing.
	if err := db.Set([]byte("apricot"), []byte("v-apricot")); err != nil {
		t.Fatal(err)
	}
	keys, err := db.KeysWithPrefix(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := joined(keys); got != "a,app,apple,apply,apricot,apt,b,ba" {
		t.Errorf("KeysWithPrefix(nil) = %s", got)
	}
}

func TestIteratorPrefixAndStart(t *testing.T) {
	db := openLocal(t)
	setRangeKeys(t, db)
	for _, c := range []struct {
		opts kv.IteratorOptions
		want string
	}{
		{kv.IteratorOptions{Prefix: []byte("app")}, "app,apple,apply"},
		{kv.IteratorOptions{Prefix: []byte("app"), Reverse: true}, "apply,apple,app"},
		{kv.IteratorOptions{Prefix: []byte("zz")}, ""},
		// Seek: at the key if present, else the next one in the order.
		{kv.IteratorOptions{Start: []byte("apple")}, "apple,apply,apt,b,ba"},
		{kv.IteratorOptions{Start: []byte("applf")}, "apply,apt,b,ba"},
		{kv.IteratorOptions{Start: []byte("applf"), Reverse: true}, "apple,app,a"},
		{kv.IteratorOptions{Start: []byte("zz"), Reverse: true}, "ba,b,apt,apply,apple,app,a"},
		// Both: the prefix bounds the seek.
		{kv.IteratorOptions{Prefix: []byte("ap"), Start: []byte("apple")}, "apple,apply,apt"},
		{kv.IteratorOptions{Prefix: []byte("ap"), Start: []byte("apple"), Reverse: true}, "apple,app"},
		{kv.IteratorOptions{Prefix: []byte("ap"), Start: []byte("b"), Reverse: true}, "apt,apply,apple,app"},
		{kv.IteratorOptions{Prefix: []byte("ap"), Start: []byte("b")}, ""},
		{kv.IteratorOptions{Prefix: []byte("ap"), KeysOnly: true}, "app,apple,apply,apt"},
	} {
		if got := iterated(t, db, c.opts); got != c.want {
			t.Errorf("%+v: %s, want %s", c.opts, got, c.want)
		}
	}
}

// The range is checked like every argument: a prefix longer than a key may be is
// ErrInvalidArgument, not an empty result.
func TestRangeOverTheKeyLimitIsRefused(t *testing.T) {
	db := openLocal(t)
	setRangeKeys(t, db)
	long := bytes.Repeat([]byte("a"), 65001)
	if _, err := db.KeysWithPrefix(long); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("KeysWithPrefix(65001 bytes): %v, want ErrInvalidArgument", err)
	}
	if _, err := db.NewIterator(kv.IteratorOptions{Start: long}); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("Start of 65001 bytes: %v, want ErrInvalidArgument", err)
	}
	// The caller's slices are not changed.
	prefix := []byte("ap")
	keys, err := db.KeysWithPrefix(prefix)
	if err != nil || string(prefix) != "ap" || !slices.ContainsFunc(keys, func(k []byte) bool { return string(k) == "apt" }) {
		t.Errorf("KeysWithPrefix(ap) = %s, %v; prefix now %q", joined(keys), err, prefix)
	}
}
