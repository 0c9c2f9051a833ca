package kv_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// farFuture is the latest expiry accepted (the end of the year 9999); times in the
// past and this one test expiry without waiting on a clock.
var farFuture = time.UnixMilli(253402300799999)

func TestExpiryWithTTLsAndAbsoluteTimes(t *testing.T) {
	db := openLocal(t)
	if err := db.SetWithTTL([]byte("session"), []byte("abc"), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	ttl, ok, err := db.TTL([]byte("session"))
	if err != nil || !ok || ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("TTL = %v, %v, %v", ttl, ok, err)
	}
	if v, err := db.Get([]byte("session")); err != nil || string(v) != "abc" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	// No expiry, and a missing key.
	if err := db.Set([]byte("plain"), []byte("p")); err != nil {
		t.Fatal(err)
	}
	if ttl, ok, err := db.TTL([]byte("plain")); err != nil || ok || ttl != 0 {
		t.Fatalf("TTL of plain = %v, %v, %v", ttl, ok, err)
	}
	if at, err := db.ExpiresAt([]byte("plain")); err != nil || !at.IsZero() {
		t.Fatalf("ExpiresAt of plain = %v, %v", at, err)
	}
	if _, _, err := db.TTL([]byte("nothing")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("TTL of a missing key: %v", err)
	}
	if err := db.Persist([]byte("plain")); err != nil {
		t.Fatalf("Persist without expiry: %v", err)
	}
	// Far in the future: kept, and exported with its expiry.
	if err := db.ExpireAt([]byte("plain"), farFuture); err != nil {
		t.Fatal(err)
	}
	if at, err := db.ExpiresAt([]byte("plain")); err != nil || !at.Equal(farFuture) {
		t.Fatalf("ExpiresAt = %v, %v", at, err)
	}
	// Further away than a Duration reaches: the largest one, not a negative overflow.
	if ttl, ok, err := db.TTL([]byte("plain")); err != nil || !ok || ttl != time.Duration(math.MaxInt64) {
		t.Fatalf("TTL of an expiry in 9999 = %v, %v, %v", ttl, ok, err)
	}
	var out bytes.Buffer
	if err := db.Export(&out, []byte("plain")); err != nil {
		t.Fatal(err)
	}
	want := `{"key":"plain","value":"p","key_base64":false,"value_base64":false,"expires_at_unix_ms":253402300799999}` + "\n"
	if out.String() != want {
		t.Fatalf("Export = %s", out.String())
	}
	if err := db.Persist([]byte("plain")); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.TTL([]byte("plain")); ok {
		t.Fatal("Persist left an expiry")
	}
	if err := db.Expire([]byte("plain"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl, ok, _ := db.TTL([]byte("plain")); !ok || ttl <= 50*time.Second || ttl > time.Minute {
		t.Fatalf("TTL after Expire = %v", ttl)
	}
	// In the past: gone at once from Get, Keys, iterators.
	past := time.Unix(1, 0)
	if err := db.SetExpiringAt([]byte("old"), []byte("o"), past); err != nil {
		t.Fatal(err)
	}
	if err := db.ExpireAt([]byte("session"), past); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"old", "session"} {
		if _, err := db.Get([]byte(key)); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("Get(%s) after its expiry: %v", key, err)
		}
	}
	keys, err := db.Keys()
	if err != nil || len(keys) != 1 || string(keys[0]) != "plain" {
		t.Fatalf("Keys = %q, %v", keys, err)
	}
	if err := db.Persist([]byte("session")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Persist of an expired key: %v", err)
	}
	if err := db.Expire([]byte("nothing"), time.Second); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Expire of a missing key: %v", err)
	}
	// Bad TTLs and times change nothing.
	for _, ttl := range []time.Duration{0, -time.Second, -1 << 63} {
		if err := db.SetWithTTL([]byte("x"), []byte("v"), ttl); !errors.Is(err, kv.ErrInvalidArgument) {
			t.Fatalf("SetWithTTL(%v): %v", ttl, err)
		}
	}
	for _, at := range []time.Time{{}, time.Unix(-5, 0), farFuture.Add(time.Millisecond)} {
		if err := db.SetExpiringAt([]byte("x"), []byte("v"), at); !errors.Is(err, kv.ErrInvalidArgument) {
			t.Fatalf("SetExpiringAt(%v): %v", at, err)
		}
	}
	if err := db.Expire([]byte("plain"), 0); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Fatalf("Expire(0): %v", err)
	}
	if _, err := db.Get([]byte("x")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("a refused set wrote: %v", err)
	}
}

func TestBatchSetsWithTTL(t *testing.T) {
	db := openLocal(t)
	err := db.Update(func(b *kv.Batch) error {
		if err := b.SetWithTTL([]byte("t"), []byte("1"), time.Hour); err != nil {
			return err
		}
		if err := b.SetExpiringAt([]byte("gone"), []byte("2"), time.Unix(1, 0)); err != nil {
			return err
		}
		if err := b.SetWithTTL([]byte("bad"), []byte("3"), -time.Second); !errors.Is(err, kv.ErrInvalidArgument) {
			t.Errorf("batch SetWithTTL(-1s): %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ttl, ok, err := db.TTL([]byte("t")); err != nil || !ok || ttl <= 59*time.Minute {
		t.Fatalf("TTL = %v, %v, %v", ttl, ok, err)
	}
	for _, key := range []string{"gone", "bad"} {
		if _, err := db.Get([]byte(key)); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("Get(%s): %v", key, err)
		}
	}
	// Import takes the expiry; a line already expired is not imported or counted.
	other := openLocal(t)
	n, err := other.Import(strings.NewReader(
		`{"key":"a","value":"1","expires_at_unix_ms":253402300799999}`+"\n"+
			`{"key":"b","value":"2","expires_at_unix_ms":1000}`+"\n"), false)
	if err != nil || n != 1 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	if at, err := other.ExpiresAt([]byte("a")); err != nil || !at.Equal(farFuture) {
		t.Fatalf("ExpiresAt = %v, %v", at, err)
	}
}
