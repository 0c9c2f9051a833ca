package kv_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/internal/charmtest"
	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// scratch is the CHARM_DATA_DIR of the whole test process, so that nothing a test
// opens with the environment's settings lands in the user's real data directory.
var scratch string

func TestMain(m *testing.M) {
	for _, e := range os.Environ() {
		if name, _, _ := strings.Cut(e, "="); strings.HasPrefix(name, "CHARM_") && name != "CHARM_BIN" {
			os.Unsetenv(name)
		}
	}
	var err error
	if scratch, err = os.MkdirTemp("", "charm-kv-go-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("CHARM_DATA_DIR", scratch)
	code := m.Run()
	stopServer()
	cleanupOriginal()
	os.RemoveAll(scratch)
	os.Exit(code)
}

var shared struct {
	once   sync.Once
	server *charmtest.Server
	err    error
}

// testServer returns the package's shared `charm serve`, starting it on first use.
// A missing charm binary fails the test: there is no fallback.
func testServer(t testing.TB) *charmtest.Server {
	t.Helper()
	shared.once.Do(func() { shared.server, shared.err = charmtest.Start() })
	if shared.err != nil {
		t.Fatalf("cannot start the Charm server: %v", shared.err)
	}
	return shared.server
}

func stopServer() {
	if shared.server != nil {
		shared.server.Stop()
	}
}

// clientDir returns a fresh CHARM_DATA_DIR for one client of srv.
func clientDir(t testing.TB, srv *charmtest.Server) string {
	t.Helper()
	dir, err := srv.ClientDir(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// serverOpts points the binding at srv with dataDir, without the environment.
func serverOpts(srv *charmtest.Server, dataDir string, extra ...kv.Option) []kv.Option {
	opts := []kv.Option{
		kv.WithoutEnvironment(),
		kv.WithDataDir(dataDir),
		kv.WithHost(charmtest.Host),
		kv.WithSSHPort(srv.SSHPort),
		kv.WithHTTPPort(srv.HTTPPort),
	}
	return append(opts, extra...)
}

// localOpts keeps the binding on this machine, in a fresh data directory.
func localOpts(t testing.TB, extra ...kv.Option) []kv.Option {
	t.Helper()
	return append([]kv.Option{kv.WithoutEnvironment(), kv.WithDataDir(t.TempDir())}, extra...)
}

// openLocal opens db in a fresh local data directory and closes it after the test.
func openLocal(t testing.TB, extra ...kv.Option) *kv.KV {
	t.Helper()
	db, err := kv.Open("test", localOpts(t, extra...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// setEnv sets the CHARM_* variables of env for the rest of the test.
func setEnv(t *testing.T, env map[string]string) {
	for k, v := range env {
		t.Setenv(k, v)
	}
}
