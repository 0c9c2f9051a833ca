// Package charmtest runs a real `charm serve` (Charm v0.12.6) on 127.0.0.1 for the
// tests of the Go binding, like tests/support/charm_server.rs does for the Rust
// tests. There is no fake server: a missing binary is an error, and tests fail.
package charmtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Host is the address every test server binds and every client uses.
const Host = "127.0.0.1"

// startTimeout is how long a server may take to answer its health check.
const startTimeout = 30 * time.Second

// Server is a running `charm serve`.
type Server struct {
	SSHPort, HTTPPort, HealthPort, StatsPort int
	// Dir holds the server's data (server-data/), its log and client directories.
	Dir string

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// Bin returns the charm binary to test against: $CHARM_BIN, else
// $GOPATH/bin/charm, ~/go/bin/charm, or charm on PATH.
func Bin() (string, error) {
	if bin := os.Getenv("CHARM_BIN"); bin != "" {
		if st, err := os.Stat(bin); err != nil || st.IsDir() {
			return "", fmt.Errorf("CHARM_BIN=%s does not exist", bin)
		}
		return bin, nil
	}
	var candidates []string
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		for _, dir := range filepath.SplitList(gopath) {
			candidates = append(candidates, filepath.Join(dir, "bin", "charm"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "charm"))
	}
	if p, err := exec.LookPath("charm"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", errors.New("the Charm server binary was not found (CHARM_BIN, $GOPATH/bin/charm, " +
		"~/go/bin/charm, PATH); install it with scripts/setup-deps " +
		"(go install github.com/charmbracelet/charm@v0.12.6)")
}

// Start starts a server in a new temporary directory with free ports and waits
// until its health port answers. extraEnv adds CHARM_SERVER_* settings
// ("NAME=value").
func Start(extraEnv ...string) (*Server, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A port picked free can be taken before the server binds it: try a few sets.
	for range 3 {
		s, err := try(bin, extraEnv)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func try(bin string, extraEnv []string) (*Server, error) {
	dir, err := os.MkdirTemp("", "charm-kv-go-server-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{SSHPort: ports[0], HTTPPort: ports[1], HealthPort: ports[2], StatsPort: ports[3], Dir: dir}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	// A small sh watchdog kills the server when our end of its stdin closes, so the
	// server dies with the test process even if that is killed.
	cmd := exec.Command("sh", "-c",
		`"$0" serve "$@" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid`,
		bin,
		"--ssh-port", strconv.Itoa(s.SSHPort),
		"--http-port", strconv.Itoa(s.HTTPPort),
		"--health-port", strconv.Itoa(s.HealthPort),
		"--stats-port", strconv.Itoa(s.StatsPort))
	cmd.Dir = dir
	cmd.Env = append(serverEnv(),
		"CHARM_SERVER_DATA_DIR="+filepath.Join(dir, "server-data"),
		"CHARM_SERVER_BIND_ADDRESS="+Host,
		"CHARM_SERVER_HOST="+Host)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot run sh to start %s: %w", bin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		if healthOK(s.HealthPort) {
			return s, nil
		}
		select {
		case <-s.done:
			log := s.Log()
			s.Stop()
			return nil, fmt.Errorf("charm serve (%s) exited:\n%s", bin, log)
		default:
		}
		if time.Now().After(deadline) {
			log := s.Log()
			s.Stop()
			return nil, fmt.Errorf("charm serve (%s) did not answer its health check in %v:\n%s", bin, startTimeout, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serverEnv is this process's environment without CHARM_* variables.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHARM_") {
			env = append(env, kv)
		}
	}
	return env
}

// Stop stops the server and removes its directory (client directories included).
func (s *Server) Stop() {
	if s.stdin != nil {
		_ = s.stdin.Close() // the watchdog kills the server and exits
		s.stdin = nil
	}
	if s.done != nil {
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	_ = os.RemoveAll(s.Dir)
}

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return string(b)
}

// DataDir returns the server's data directory.
func (s *Server) DataDir() string { return filepath.Join(s.Dir, "server-data") }

// ClientDir returns a fresh directory for one client's CHARM_DATA_DIR, named after
// name, removed with the server. Fresh on every call: a test run again on the same
// server (go test -count=N) starts from nothing, not from its previous run's device.
func (s *Server) ClientDir(name string) (string, error) {
	clients := filepath.Join(s.Dir, "clients")
	if err := os.MkdirAll(clients, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(clients, name+"-")
}

// ClientEnv returns the CHARM_* variables that point a client (the binding or the
// original Go package) at this server with dataDir as CHARM_DATA_DIR.
func (s *Server) ClientEnv(dataDir string) map[string]string {
	return map[string]string{
		"CHARM_HOST":      Host,
		"CHARM_SSH_PORT":  strconv.Itoa(s.SSHPort),
		"CHARM_HTTP_PORT": strconv.Itoa(s.HTTPPort),
		"CHARM_DATA_DIR":  dataDir,
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", Host+":0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func healthOK(port int) bool {
	client := http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil},
	}
	resp, err := client.Get(fmt.Sprintf("http://%s:%d/", Host, port))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}
