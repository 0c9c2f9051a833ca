package kv_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

func mustGet(t *testing.T, db *kv.KV, key string) []byte {
	t.Helper()
	v, err := db.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func TestSetGetDeleteKeys(t *testing.T) {
	db := openLocal(t)
	if keys, err := db.Keys(); err != nil || len(keys) != 0 {
		t.Fatalf("Keys() on a new database = %q, %v", keys, err)
	}
	for _, k := range []string{"b", "a", "c"} {
		if err := db.Set([]byte(k), []byte("value of "+k)); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	if got := mustGet(t, db, "a"); string(got) != "value of a" {
		t.Errorf("Get(a) = %q", got)
	}
	if err := db.Set([]byte("a"), []byte("overwritten")); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, db, "a"); string(got) != "overwritten" {
		t.Errorf("Get(a) after overwrite = %q", got)
	}
	keys, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]byte{[]byte("a"), []byte("b"), []byte("c")}; !slices.EqualFunc(keys, want, bytes.Equal) {
		t.Errorf("Keys() = %q, want %q", keys, want)
	}
	if err := db.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get([]byte("b")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get(deleted) error = %v, want ErrNotFound", err)
	}
	if err := db.Delete([]byte("never there")); err != nil {
		t.Errorf("Delete(missing key) = %v, want nil", err)
	}
	if keys, _ := db.Keys(); len(keys) != 2 {
		t.Errorf("Keys() after delete = %q", keys)
	}
	if db.Name() != "test" {
		t.Errorf("Name() = %q", db.Name())
	}
}

func TestBinaryKeysAndValues(t *testing.T) {
	db := openLocal(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	pairs := [][2][]byte{
		{all, all},
		{[]byte{0}, []byte{0, 0, 0}},
		{[]byte("nul\x00inside"), []byte("\xff\xfe not utf-8 \xc3\x28")},
		{[]byte{0xff}, slices.Repeat([]byte{0}, 1000)},
	}
	for _, p := range pairs {
		if err := db.Set(p[0], p[1]); err != nil {
			t.Fatalf("Set(%x): %v", p[0], err)
		}
	}
	for _, p := range pairs {
		got, err := db.Get(p[0])
		if err != nil || !bytes.Equal(got, p[1]) {
			t.Errorf("Get(%x) = %x, %v; want %x", p[0], got, err, p[1])
		}
	}
	// Keys sort by bytes, not as text.
	keys, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{all, []byte{0}, []byte("nul\x00inside"), []byte{0xff}}
	slices.SortFunc(want, bytes.Compare)
	if !slices.EqualFunc(keys, want, bytes.Equal) {
		t.Errorf("Keys() = %x, want %x", keys, want)
	}
}

func TestEmptyKeyAndValue(t *testing.T) {
	db := openLocal(t)
	if err := db.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.Get([]byte("empty"))
	if err != nil {
		t.Fatalf("Get(empty value): %v", err)
	}
	if got == nil || len(got) != 0 {
		t.Errorf("Get(empty value) = %#v, want a non-nil empty slice", got)
	}
}

// The original (Badger) refuses the empty key with "Key cannot be empty" in Set, Get
// and Delete; so does the binding, with ErrInvalidArgument, in batches too.
func TestTheEmptyKeyIsRefusedAsInTheOriginal(t *testing.T) {
	db := openLocal(t)
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, kv.ErrInvalidArgument) || !strings.Contains(err.Error(), "key cannot be empty") {
			t.Errorf("%s = %v, want ErrInvalidArgument (key cannot be empty)", what, err)
		}
	}
	refused("Set(nil)", db.Set(nil, []byte("v")))
	_, err := db.Get([]byte{})
	refused("Get(empty)", err)
	refused("Delete(nil)", db.Delete(nil))
	refused("SetReader(empty)", db.SetReader([]byte{}, strings.NewReader("v")))
	b, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	refused("Batch.Set(nil)", b.Set(nil, []byte("v")))
	refused("Batch.Delete(nil)", b.Delete(nil))
	if keys, err := db.Keys(); err != nil || len(keys) != 0 {
		t.Errorf("Keys after refused writes = %q, %v", keys, err)
	}
}

func TestLargeValues(t *testing.T) {
	db := openLocal(t)
	big := make([]byte, 40<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("big"), big); err != nil {
		t.Fatalf("Set(40 MB): %v", err)
	}
	if got := mustGet(t, db, "big"); !bytes.Equal(got, big) {
		t.Fatalf("Get(40 MB) returned %d different bytes", len(got))
	}
	// SetReader/GetReader with another large value.
	if err := db.SetReader([]byte("reader"), io.LimitReader(rand.Reader, 12<<20)); err != nil {
		t.Fatal(err)
	}
	r, err := db.GetReader([]byte("reader"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != 12<<20 {
		t.Errorf("GetReader read %d bytes, %v", n, err)
	}
	if _, err := db.GetReader([]byte("missing")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("GetReader(missing) = %v", err)
	}
	// A key over the limit is refused, not truncated.
	if err := db.Set(bytes.Repeat([]byte("k"), 65001), nil); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("Set(65001-byte key) = %v, want ErrInvalidArgument", err)
	}
}

func TestSetReaderError(t *testing.T) {
	db := openLocal(t)
	boom := errors.New("boom")
	if err := db.SetReader([]byte("k"), io.MultiReader(strings.NewReader("partial"), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("SetReader with a failing reader = %v, want boom", err)
	}
	if _, err := db.Get([]byte("k")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("a failed SetReader wrote something: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func fill(t testing.TB, db *kv.KV, n int) {
	t.Helper()
	err := db.Update(func(b *kv.Batch) error {
		for i := range n {
			if err := b.Set([]byte(fmt.Sprintf("key%04d", i)), []byte(fmt.Sprintf("value%d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("fill: %v", err)
	}
}

func TestIterator(t *testing.T) {
	db := openLocal(t)
	fill(t, db, 50)

	it, err := db.NewIterator(kv.IteratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot: writes after creation are not seen.
	if err := db.Set([]byte("key9999"), []byte("late")); err != nil {
		t.Fatal(err)
	}
	var n int
	for it.Next() {
		if want := fmt.Sprintf("key%04d", n); string(it.Key()) != want {
			t.Fatalf("pair %d: key %q, want %q", n, it.Key(), want)
		}
		if want := fmt.Sprintf("value%d", n); string(it.Value()) != want {
			t.Fatalf("pair %d: value %q, want %q", n, it.Value(), want)
		}
		n++
	}
	if err := it.Err(); err != nil || n != 50 {
		t.Fatalf("forward: %d pairs, %v", n, err)
	}
	if it.Next() {
		t.Error("Next after the end returned true")
	}
	if err := it.Close(); err != nil {
		t.Error(err)
	}
	if err := it.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Reverse, keys only, with range-over-func.
	rev, err := db.NewIterator(kv.IteratorOptions{Reverse: true, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rev.Close()
	var keys []string
	for k, v := range rev.All() {
		if v != nil {
			t.Fatalf("KeysOnly returned value %q", v)
		}
		keys = append(keys, string(k))
	}
	if err := rev.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 51 || keys[0] != "key9999" || keys[50] != "key0000" {
		t.Errorf("reverse keys: %d, first %q, last %q", len(keys), keys[0], keys[len(keys)-1])
	}

	// Stopping early, then closing.
	early, err := db.NewIterator(kv.IteratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range early.All() {
		break
	}
	if string(early.Key()) != "key0000" {
		t.Errorf("after break, Key() = %q", early.Key())
	}
	early.Close()
	if early.Next() || early.Key() != nil {
		t.Error("a closed iterator still yields")
	}
}

func TestBatch(t *testing.T) {
	db := openLocal(t)
	if err := db.Set([]byte("keep"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	b, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	for _, step := range []error{
		b.Set([]byte("a"), []byte("A")),
		b.Set([]byte("b"), []byte("B")),
		b.Delete([]byte("keep")),
		b.Set([]byte("a"), []byte("A2")),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	// The batch sees its changes; the database does not, before Commit.
	if v, err := b.Get([]byte("a")); err != nil || string(v) != "A2" {
		t.Errorf("batch Get(a) = %q, %v", v, err)
	}
	if _, err := b.Get([]byte("keep")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("batch Get(deleted) = %v", err)
	}
	if _, err := db.Get([]byte("a")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("uncommitted write visible: %v", err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if string(mustGet(t, db, "a")) != "A2" || string(mustGet(t, db, "b")) != "B" {
		t.Error("committed writes missing")
	}
	if _, err := db.Get([]byte("keep")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("committed delete missing: %v", err)
	}
	// A batch ends with Commit: later use is ErrClosed, Discard is a no-op.
	if err := b.Set([]byte("x"), nil); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Set after Commit = %v, want ErrClosed", err)
	}
	if err := b.Commit(); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("second Commit = %v, want ErrClosed", err)
	}
	b.Discard()

	// Discard drops everything.
	d, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	d.Set([]byte("dropped"), []byte("x"))
	d.Discard()
	d.Discard()
	if _, err := db.Get([]byte("dropped")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("discarded write visible: %v", err)
	}

	// Update commits on nil and discards on error.
	boom := errors.New("boom")
	if err := db.Update(func(b *kv.Batch) error {
		b.Set([]byte("u1"), []byte("x"))
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("Update = %v, want boom", err)
	}
	if _, err := db.Get([]byte("u1")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("failed Update wrote: %v", err)
	}
	if err := db.Update(func(b *kv.Batch) error { return b.Set([]byte("u2"), []byte("y")) }); err != nil {
		t.Fatal(err)
	}
	if string(mustGet(t, db, "u2")) != "y" {
		t.Error("Update did not commit")
	}
	// Limits are checked when an entry is added: the oversized one is refused and
	// not recorded; Update discards the whole batch on that error.
	big, _ := db.NewBatch()
	big.Set([]byte("fine"), []byte("1"))
	if err := big.Set(bytes.Repeat([]byte("k"), 65001), nil); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("Set with an oversized key = %v", err)
	}
	big.Discard()
	if err := db.Update(func(b *kv.Batch) error {
		if err := b.Set([]byte("fine"), []byte("1")); err != nil {
			return err
		}
		return b.Set(bytes.Repeat([]byte("k"), 65001), nil)
	}); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("Update with an oversized key = %v", err)
	}
	if _, err := db.Get([]byte("fine")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("a failed Update wrote part of the batch: %v", err)
	}
}

func TestTwoHandlesOneDatabase(t *testing.T) {
	opts := localOpts(t)
	a, err := kv.Open("shared", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := kv.Open("shared", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Set([]byte("from a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get([]byte("from a")); err != nil || string(v) != "1" {
		t.Errorf("b.Get = %q, %v", v, err)
	}
	if err := b.Delete([]byte("from a")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get([]byte("from a")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("a sees b's delete? %v", err)
	}
	// Closing one handle leaves the other working.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte("after"), []byte("2")); err != nil {
		t.Errorf("b after a.Close: %v", err)
	}
}

func TestCloseIdempotentAndUseAfterClose(t *testing.T) {
	opts := localOpts(t)
	db, err := kv.Open("closing", opts...)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, 3)
	it, err := db.NewIterator(kv.IteratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	b, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	calls := map[string]error{
		"Get":           func() error { _, err := db.Get([]byte("k")); return err }(),
		"GetReader":     func() error { _, err := db.GetReader([]byte("k")); return err }(),
		"Set":           db.Set([]byte("k"), nil),
		"SetReader":     db.SetReader([]byte("k"), strings.NewReader("v")),
		"Delete":        db.Delete([]byte("k")),
		"Keys":          func() error { _, err := db.Keys(); return err }(),
		"Sync":          db.Sync(),
		"SyncWith":      db.SyncWithProgress(func(kv.SyncProgress) {}),
		"Reset":         db.Reset(),
		"ForceReset":    db.ForceReset(),
		"PendingWrites": func() error { _, err := db.PendingWrites(); return err }(),
		"Backup":        db.Backup(filepath.Join(t.TempDir(), "b")),
		"NewIterator":   func() error { _, err := db.NewIterator(kv.IteratorOptions{}); return err }(),
		"NewBatch":      func() error { _, err := db.NewBatch(); return err }(),
		"Update":        db.Update(func(*kv.Batch) error { return nil }),
		// Objects made before Close are closed with their store (in the library).
		"Iterator.Next": func() error { it.Next(); return it.Err() }(),
		"Batch.Set":     b.Set([]byte("k"), nil),
		"Batch.Commit":  b.Commit(),
	}
	for name, err := range calls {
		if !errors.Is(err, kv.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
		var e *kv.Error
		if !errors.As(err, &e) || e.Status != kv.StatusClosed || e.Message == "" {
			t.Errorf("%s after Close: %#v is not an *Error with a message", name, err)
		}
	}
	// The data is still there for the next Open.
	again, err := kv.Open("closing", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if keys, err := again.Keys(); err != nil || len(keys) != 3 {
		t.Errorf("after reopen: %q, %v", keys, err)
	}
}

func TestOpenWithDefaultsUsesTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CHARM_DATA_DIR", dir)
	db, err := kv.OpenWithDefaults(kv.DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Local mode (no CHARM_HOST): the data path is <data dir>/localhost.
	file := filepath.Join(dir, "localhost", "charm-kv", kv.DefaultName+".sqlite")
	if _, err := os.Stat(file); err != nil {
		t.Errorf("database file: %v", err)
	}
	if err := db.Sync(); !errors.Is(err, kv.ErrNotConfigured) {
		t.Errorf("Sync in local mode = %v, want ErrNotConfigured", err)
	}
	// The empty name opens the default database, as `charm kv` does without @DB.
	unnamed, err := kv.OpenWithDefaults("")
	if err != nil {
		t.Fatalf(`OpenWithDefaults(""): %v`, err)
	}
	if got, err := unnamed.Get([]byte("k")); err != nil || string(got) != "v" || unnamed.Name() != kv.DefaultName {
		t.Errorf(`OpenWithDefaults(""): Name %q, Get = %q, %v`, unnamed.Name(), got, err)
	}
	unnamed.Close()
	// A malformed variable is an error, not a silent default.
	t.Setenv("CHARM_SSH_PORT", "not a number")
	if _, err := kv.OpenWithDefaults("other"); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("Open with CHARM_SSH_PORT=garbage = %v, want ErrInvalidArgument", err)
	}
	// WithoutEnvironment ignores it.
	if db2, err := kv.Open("other", kv.WithoutEnvironment(), kv.WithDataDir(dir)); err != nil {
		t.Errorf("Open WithoutEnvironment = %v", err)
	} else {
		db2.Close()
	}
}

func TestListAndDeleteDatabases(t *testing.T) {
	opts := localOpts(t)
	for _, name := range []string{"zeta", "alpha"} {
		db, err := kv.Open(name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		db.Set([]byte("k"), []byte(name))
		db.Close()
	}
	names, err := kv.ListDatabases(opts...)
	if err != nil || !slices.Equal(names, []string{"alpha", "zeta"}) {
		t.Fatalf("ListDatabases = %q, %v", names, err)
	}
	if err := kv.DeleteDatabase("zeta", opts...); err != nil {
		t.Fatal(err)
	}
	if err := kv.DeleteDatabase("zeta", opts...); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("second DeleteDatabase = %v, want ErrNotFound", err)
	}
	if names, _ := kv.ListDatabases(opts...); !slices.Equal(names, []string{"alpha"}) {
		t.Errorf("after delete: %q", names)
	}
	if err := kv.DeleteDatabase("../escape", opts...); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("DeleteDatabase(../escape) = %v", err)
	}
	// A database some handle has open is not deleted under it: its writes would be lost.
	db, err := kv.Open("alpha", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.DeleteDatabase("alpha", opts...); !errors.Is(err, kv.ErrBusy) {
		t.Errorf("DeleteDatabase of an open database = %v, want ErrBusy", err)
	}
	if err := db.Set([]byte("after"), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	again, err := kv.Open("alpha", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := again.Get([]byte("after")); err != nil || string(v) != "kept" {
		t.Errorf("the write after the refused delete: %q, %v", v, err)
	}
	again.Close()
	if err := kv.DeleteDatabase("alpha", opts...); err != nil {
		t.Errorf("DeleteDatabase once closed = %v", err)
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	db := openLocal(t)
	fill(t, db, 10)
	dest := filepath.Join(dir, "copy.sqlite")
	if err := db.Backup(dest); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 16)
	f, err := os.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, head); err != nil || string(head) != "SQLite format 3\x00" {
		t.Errorf("backup starts with %q, %v", head, err)
	}
	if err := db.Backup(dest); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Errorf("Backup over an existing file = %v, want ErrInvalidArgument", err)
	}
}

func TestEncryptKeyOption(t *testing.T) {
	dir := t.TempDir()
	key1 := []byte(strings.Repeat("k", 43))
	key2 := []byte(strings.Repeat("z", 43))
	open := func(keys ...[]byte) (*kv.KV, error) {
		opts := []kv.Option{kv.WithoutEnvironment(), kv.WithDataDir(dir)}
		for _, k := range keys {
			opts = append(opts, kv.WithEncryptKey(k))
		}
		return kv.Open("keyed", opts...)
	}
	db, err := open(key1)
	if err != nil {
		t.Fatal(err)
	}
	db.Set([]byte("secret"), []byte("value"))
	db.Close()
	// The wrong key does not open it; the right one among several does.
	if _, err := open(key2); !errors.Is(err, kv.ErrKeys) {
		t.Errorf("Open with the wrong key = %v, want ErrKeys", err)
	}
	db, err = open(key2, key1)
	if err != nil {
		t.Fatalf("Open with a rotated key list: %v", err)
	}
	defer db.Close()
	if v := mustGet(t, db, "secret"); string(v) != "value" {
		t.Errorf("Get = %q", v)
	}
}

func TestVersion(t *testing.T) {
	if kv.Version() != kv.HeaderVersion {
		t.Errorf("library %s, header %s", kv.Version(), kv.HeaderVersion)
	}
}

func TestDurabilityOption(t *testing.T) {
	opts := localOpts(t)
	db, err := kv.Open("normal", append(opts, kv.WithDurability(kv.DurabilityNormal))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = kv.Open("normal", append(opts, kv.WithDurability(kv.DurabilityFull))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get after reopening = %q, %v", v, err)
	}
	_, err = kv.Open("bad", append(localOpts(t), kv.WithDurability("fast"))...)
	if !errors.Is(err, kv.ErrInvalidArgument) {
		t.Fatalf("WithDurability(\"fast\"): %v, want ErrInvalidArgument", err)
	}
}

// A row written with a key this open lacks: Keys fails with a count (all or
// nothing), an iterator yields every readable pair and then stops with ErrCorrupt.
func TestUnreadableRowIsReportedAfterTheReadableOnes(t *testing.T) {
	dir := t.TempDir()
	key1 := []byte(strings.Repeat("k", 43))
	key2 := []byte(strings.Repeat("z", 43))
	open := func(keys ...[]byte) *kv.KV {
		opts := []kv.Option{kv.WithoutEnvironment(), kv.WithDataDir(dir)}
		for _, k := range keys {
			opts = append(opts, kv.WithEncryptKey(k))
		}
		db, err := kv.Open("rows", opts...)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open(key1)
	if err := db.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("c"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = open(key2, key1)
	if err := db.Set([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = open(key1)
	defer db.Close()
	if _, err := db.Keys(); !errors.Is(err, kv.ErrCorrupt) || !strings.Contains(err.Error(), "1 of 3 stored keys") {
		t.Errorf("Keys = %v, want ErrCorrupt counting 1 of 3", err)
	}
	it, err := db.NewIterator(kv.IteratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var seen []string
	for it.Next() {
		seen = append(seen, string(it.Key())+"="+string(it.Value()))
	}
	if strings.Join(seen, ",") != "a=1,c=3" || !errors.Is(it.Err(), kv.ErrCorrupt) {
		t.Errorf("iteration = %v then %v, want a=1,c=3 then ErrCorrupt", seen, it.Err())
	}
}
