package compare_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/internal/charmtest"
	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// The benchmarks against the original package; run them with
// `go test -run '^$' -bench . -tags charmkv_dev` (scripts/bench does, with charmkv_release).

func TestMain(m *testing.M) {
	for _, e := range os.Environ() {
		if name, _, _ := strings.Cut(e, "="); strings.HasPrefix(name, "CHARM_") && name != "CHARM_BIN" {
			os.Unsetenv(name)
		}
	}
	// Nothing opened with the environment's settings lands in the user's data directory.
	scratch, err := os.MkdirTemp("", "charm-kv-go-compare-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("CHARM_DATA_DIR", scratch)
	code := m.Run()
	if shared.server != nil {
		shared.server.Stop()
	}
	os.RemoveAll(scratch)
	os.Exit(code)
}

var shared struct {
	once   sync.Once
	server *charmtest.Server
	err    error
}

// testServer returns the shared `charm serve`, starting it on first use.
func testServer(t testing.TB) *charmtest.Server {
	t.Helper()
	shared.once.Do(func() { shared.server, shared.err = charmtest.Start() })
	if shared.err != nil {
		t.Fatalf("cannot start the Charm server: %v", shared.err)
	}
	return shared.server
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
