package kv_test

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The original package runs in a program of its own (compare/original), built
// without the race detector: Badger v3.2103.2 races in DB.MaxVersion, which would
// fail this race-enabled test binary through no fault of the binding.
var originalBin struct {
	once sync.Once
	path string
	dir  string
	err  error
	out  []byte
}

func buildOriginal(t testing.TB) string {
	t.Helper()
	originalBin.once.Do(func() {
		originalBin.dir, originalBin.err = os.MkdirTemp("", "charm-kv-go-original-")
		if originalBin.err != nil {
			return
		}
		originalBin.path = filepath.Join(originalBin.dir, "original")
		// It lives in the nested module compare/, so the binding's own module needs
		// neither charm nor Badger.
		cmd := exec.Command("go", "build", "-o", originalBin.path, "./original")
		cmd.Dir = filepath.Join("..", "compare")
		cmd.Env = withoutRaceFlag(os.Environ())
		originalBin.out, originalBin.err = cmd.CombinedOutput()
	})
	if originalBin.err != nil {
		t.Fatalf("building compare/original: %v\n%s", originalBin.err, originalBin.out)
	}
	return originalBin.path
}

// withoutRaceFlag drops -race from GOFLAGS.
func withoutRaceFlag(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "GOFLAGS="); ok {
			var kept []string
			for _, f := range strings.Fields(v) {
				if f != "-race" && f != "-race=true" {
					kept = append(kept, f)
				}
			}
			e = "GOFLAGS=" + strings.Join(kept, " ")
		}
		out = append(out, e)
	}
	return out
}

// original runs one operation of the original package on database name with the
// CHARM_* settings env, and returns its output lines.
func original(t testing.TB, env map[string]string, name, op string, args ...[]byte) []string {
	t.Helper()
	argv := []string{name, op}
	for _, a := range args {
		argv = append(argv, hex.EncodeToString(a))
	}
	cmd := exec.Command(buildOriginal(t), argv...)
	var e []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHARM_") {
			e = append(e, kv)
		}
	}
	for k, v := range env {
		e = append(e, k+"="+v)
	}
	cmd.Env = e
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("original %s %s: %v\n%s", name, op, err, out)
	}
	return strings.Fields(string(out))
}

func cleanupOriginal() {
	if originalBin.dir != "" {
		os.RemoveAll(originalBin.dir)
	}
}
