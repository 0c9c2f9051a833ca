package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/internal/charmtest"
)

func TestMain(m *testing.M) {
	for _, e := range os.Environ() {
		if name, _, _ := strings.Cut(e, "="); strings.HasPrefix(name, "CHARM_") && name != "CHARM_BIN" {
			os.Unsetenv(name)
		}
	}
	os.Exit(m.Run())
}

type result struct {
	code           int
	stdout, stderr string
}

// cmd runs the command with args and stdin, as if on a terminal when tty.
func cmd(t *testing.T, tty bool, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut, tty)
	return result{code, out.String(), errOut.String()}
}

// ok runs the command and fails the test unless it succeeds; it returns stdout.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := cmd(t, false, "", args...)
	if r.code != 0 {
		t.Fatalf("%q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

func TestCommandsLocal(t *testing.T) {
	t.Setenv("CHARM_DATA_DIR", t.TempDir())
	ok(t, "set", "Foo", "bar")
	ok(t, "set", "baz", "qux")
	if got := ok(t, "get", "foo"); got != "bar" {
		t.Errorf("get foo = %q (keys are lower-cased)", got)
	}
	if r := cmd(t, false, "from stdin\x00\xff", "set", "piped"); r.code != 0 {
		t.Fatalf("set from stdin: %+v", r)
	}
	if got := ok(t, "get", "piped"); got != "from stdin\x00\xff" {
		t.Errorf("binary value through a pipe = %q", got)
	}
	// On a terminal, binary values are omitted unless -b.
	if r := cmd(t, true, "", "get", "piped"); r.stdout != "(omitted binary data)\n" {
		t.Errorf("get on a tty = %q", r.stdout)
	}
	if r := cmd(t, true, "", "get", "-b", "piped"); r.stdout != "from stdin\x00\xff\n" {
		t.Errorf("get -b on a tty = %q", r.stdout)
	}
	if got := ok(t, "list"); got != "baz\tqux\nfoo\tbar\npiped\tfrom stdin\x00\xff\n" {
		t.Errorf("list = %q", got)
	}
	if got := ok(t, "list", "-k", "-r"); got != "piped\nfoo\nbaz\n" {
		t.Errorf("list -k -r = %q", got)
	}
	if got := ok(t, "list", "--values-only", "--delimiter", "="); got != "qux\nbar\nfrom stdin\x00\xff\n" {
		t.Errorf("list -v = %q", got)
	}
	if got := ok(t, "list", "-d", "="); !strings.HasPrefix(got, "baz=qux\n") {
		t.Errorf("list -d = = %q", got)
	}
	ok(t, "delete", "foo")
	if r := cmd(t, false, "", "get", "foo"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("get after delete: %+v", r)
	}

	// Other databases with @DB.
	ok(t, "set", "k@Other.DB", "v")
	if got := ok(t, "get", "k@other.db"); got != "v" {
		t.Errorf("get k@other.db = %q", got)
	}
	if got := ok(t, "list", "@other.db"); got != "k\tv\n" {
		t.Errorf("list @other.db = %q", got)
	}
	if got := ok(t, "list-dbs"); got != "charm.sh.kv.user.default\nother.db\n" {
		t.Errorf("list-dbs = %q", got)
	}
	ok(t, "delete-db", "@other.db")
	if got := ok(t, "list-dbs"); got != "charm.sh.kv.user.default\n" {
		t.Errorf("list-dbs after delete-db = %q", got)
	}

	// Errors: one line on stderr, exit 1.
	for _, args := range [][]string{
		{"get", "a@b@c"},
		{"get"},
		{"set", "a", "b", "c"},
		{"frobnicate"},
		{"sync"}, // local mode
		{"get", "x@../escape"},
		{"delete-db", "nodb"},
	} {
		if r := cmd(t, false, "", args...); r.code != 1 || r.stderr == "" {
			t.Errorf("%q: %+v, want an error", args, r)
		}
	}
	if r := cmd(t, false, "", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("--help: %+v", r)
	}
}

// Two machines of one account through a real server: set on one, list (which
// syncs) on the other, then reset.
func TestCommandsWithServer(t *testing.T) {
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
	ok(t, "set", "shared", "across machines")
	if r := cmd(t, false, "", "set", "second", "value"); r.code != 0 || r.stderr != "" {
		t.Fatalf("set with a server: %+v", r)
	}
	machine(two, filepath.Join(one, charmtest.Host, "charm_ed25519"))
	if got := ok(t, "list"); got != "second\tvalue\nshared\tacross machines\n" {
		t.Errorf("list on machine two = %q", got)
	}
	ok(t, "delete", "second")
	machine(one, "")
	ok(t, "sync")
	if r := cmd(t, false, "", "get", "second"); r.code != 1 {
		t.Errorf("deleted on two, still on one after sync: %+v", r)
	}
	ok(t, "reset")
	ok(t, "reset", "--force")
	if got := ok(t, "get", "shared"); got != "across machines" {
		t.Errorf("after reset: %q", got)
	}
}
