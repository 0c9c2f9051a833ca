package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charm-kv/charm-kv/bindings/go/internal/charmtest"
)

// fields parses `field: value` lines, keeping their order.
func fields(t *testing.T, out string) ([]string, map[string]string) {
	t.Helper()
	var names []string
	values := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		name, value, found := strings.Cut(line, ": ")
		if !found {
			t.Fatalf("not a field line: %q", line)
		}
		names = append(names, name)
		values[name] = value
	}
	return names, values
}

func TestStatusLocal(t *testing.T) {
	t.Setenv("CHARM_DATA_DIR", t.TempDir())
	ok(t, "set", "a@notes", "1")
	names, got := fields(t, ok(t, "status", "@notes", "--remote"))
	want := []string{"database", "last_sync", "last_sync_version", "local_version", "pending_writes",
		"chain_start", "chain_deltas", "size_bytes", "integrity", "server", "remote_version", "server_error"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("fields %q, want %q (the Rust command's)", names, want)
	}
	for name, value := range map[string]string{
		"database": "notes", "last_sync": "never", "pending_writes": "1", "chain_start": "none",
		"integrity": "ok", "server": "not configured", "remote_version": "unknown", "server_error": "none",
	} {
		if got[name] != value {
			t.Errorf("%s: %q, want %q", name, got[name], value)
		}
	}
	if r := cmd(t, false, "", "sync", "--if-stale", "10m"); r.code != 1 || !strings.Contains(r.stderr, "no Charm server") {
		t.Errorf("sync --if-stale in local mode, never synced: %+v", r)
	}
	if r := cmd(t, false, "", "sync", "--if-stale", "10"); r.code != 1 || !strings.Contains(r.stderr, "invalid duration") {
		t.Errorf("a duration without a unit: %+v", r)
	}
}

func TestParseMaxAge(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "10m": 10 * time.Minute, "2h": 2 * time.Hour,
		"1d": 24 * time.Hour, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond, "0s": 0,
	} {
		if got, err := parseMaxAge(text); err != nil || got != want {
			t.Errorf("parseMaxAge(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	for _, text := range []string{"", "10", "m", "10x", "-1s", "1.5h", "s10", "99999999999d"} {
		if _, err := parseMaxAge(text); err == nil {
			t.Errorf("parseMaxAge(%q) accepted", text)
		}
	}
}

func TestStatusAndSyncIfStaleWithServer(t *testing.T) {
	srv, err := charmtest.Start()
	if err != nil {
		t.Fatalf("cannot start the Charm server: %v", err)
	}
	defer srv.Stop()
	one, err := srv.ClientDir("one")
	if err != nil {
		t.Fatal(err)
	}
	two, err := srv.ClientDir("two")
	if err != nil {
		t.Fatal(err)
	}
	machine := func(dir string, identity string) {
		for k, v := range srv.ClientEnv(dir) {
			t.Setenv(k, v)
		}
		t.Setenv("CHARM_IDENTITY_KEY", identity)
	}
	machine(one, "")
	ok(t, "set", "k1", "v1") // pushed: a successful sync
	_, got := fields(t, ok(t, "status", "--remote"))
	if got["server"] != "reachable" || got["remote_version"] != got["local_version"] || got["last_sync"] == "never" {
		t.Errorf("after a push: %v", got)
	}
	machine(two, filepath.Join(one, charmtest.Host, "charm_ed25519"))
	ok(t, "set", "k2", "v2")
	machine(one, "")
	ok(t, "sync", "--if-stale", "1h")
	if r := cmd(t, false, "", "get", "k2"); r.code != 1 {
		t.Errorf("a recent sync was repeated: %+v", r)
	}
	ok(t, "sync", "--if-stale", "0s")
	if v := ok(t, "get", "k2"); v != "v2" {
		t.Errorf("get k2 after a due sync = %q", v)
	}
}
