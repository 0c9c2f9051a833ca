//! A real `charm serve` (Charm v0.12.6) on 127.0.0.1 for integration tests, and the
//! real Go `charm` client pointed at it.
//!
//! The binary is `$CHARM_BIN`, else `~/go/bin/charm` (or `$GOPATH/bin/charm`), else
//! `charm` on `PATH`; `scripts/setup-deps` installs it. A missing binary fails the test
//! with that explanation: these tests never fall back to a fake server.
//!
//! Each [`CharmServer`] gets its own data directory and free ports, so tests may run in
//! parallel. The server runs under a small `sh` watchdog that kills it when our end of
//! its stdin closes, so it dies with the test process even if that is killed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The address every test server binds and every client uses.
pub const HOST: &str = "127.0.0.1";

/// How long a server may take to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `charm serve`.
pub struct CharmServer {
    watchdog: Child,
    stdin: Option<ChildStdin>,
    dir: tempfile::TempDir,
    pub ssh_port: u16,
    pub http_port: u16,
    pub health_port: u16,
    pub stats_port: u16,
}

impl CharmServer {
    /// Starts a server and waits until its health port answers. Panics with the
    /// server's log if it does not come up.
    pub fn start() -> CharmServer {
        let bin = charm_bin();
        let mut last_log = String::new();
        // A port picked free can be taken by someone else before the server binds it:
        // try a few sets.
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("charm serve ({}) did not start:\n{last_log}", bin.display());
    }

    fn try_start(bin: &Path) -> Result<CharmServer, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let [ssh_port, http_port, health_port, stats_port] = free_ports();
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("server log");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#""$0" serve "$@" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid"#)
            .arg(bin)
            .args(["--ssh-port", &ssh_port.to_string()])
            .args(["--http-port", &http_port.to_string()])
            .args(["--health-port", &health_port.to_string()])
            .args(["--stats-port", &stats_port.to_string()])
            .current_dir(dir.path())
            .env("CHARM_SERVER_DATA_DIR", dir.path().join("server-data"))
            .env("CHARM_SERVER_BIND_ADDRESS", HOST)
            .env("CHARM_SERVER_HOST", HOST)
            .env_remove("CHARM_SERVER_PUBLIC_URL")
            .env_remove("CHARM_SERVER_USE_TLS")
            .env_remove("CHARM_SERVER_ENABLE_METRICS")
            .env_remove("CHARM_SERVER_USER_MAX_STORAGE")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let mut watchdog = command
            .spawn()
            .map_err(|e| format!("cannot run sh to start {}: {e}", bin.display()))?;
        let stdin = watchdog.stdin.take();
        let mut server = CharmServer {
            watchdog,
            stdin,
            dir,
            ssh_port,
            http_port,
            health_port,
            stats_port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if health_ok(health_port) {
                return Ok(server);
            }
            let exited = matches!(server.watchdog.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                server.stop();
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's data directory (`db/`, `files/`, `.ssh/`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("server-data")
    }

    /// A fresh directory for one client's `CHARM_DATA_DIR`, removed with the server.
    pub fn client_dir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join("clients").join(name);
        std::fs::create_dir_all(&path).expect("client dir");
        path
    }

    /// The `CHARM_*` variables that point a client (ours or Go's) at this server with
    /// `data_dir` as `CHARM_DATA_DIR`.
    pub fn env_for_client(&self, data_dir: &Path) -> Vec<(String, String)> {
        vec![
            ("CHARM_HOST".into(), HOST.into()),
            ("CHARM_SSH_PORT".into(), self.ssh_port.to_string()),
            ("CHARM_HTTP_PORT".into(), self.http_port.to_string()),
            ("CHARM_DATA_DIR".into(), data_dir.display().to_string()),
        ]
    }

    /// The Go `charm` client with [`CharmServer::env_for_client`] and no other
    /// `CHARM_*` settings inherited.
    pub fn go_client(&self, data_dir: &Path) -> Command {
        let mut command = Command::new(charm_bin());
        for (name, _) in std::env::vars() {
            if name.starts_with("CHARM_") {
                command.env_remove(name);
            }
        }
        command.envs(self.env_for_client(data_dir));
        command.stdin(Stdio::null());
        command
    }

    /// Runs the Go client with `args`; panics (with its output) unless it succeeds
    /// within a minute.
    pub fn go(&self, data_dir: &Path, args: &[&str]) -> Output {
        let output = run_bounded(self.go_client(data_dir).args(args), Duration::from_secs(60));
        assert!(
            output.status.success(),
            "charm {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        // Closing the watchdog's stdin makes it kill the server and exit.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.watchdog.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

impl Drop for CharmServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `command`, killing it after `limit`.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// The `charm` binary to test against.
pub fn charm_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CHARM_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "CHARM_BIN={} does not exist", bin.display());
        return bin;
    }
    let mut candidates = Vec::new();
    if let Some(gopath) = std::env::var_os("GOPATH").filter(|v| !v.is_empty()) {
        for dir in std::env::split_paths(&gopath) {
            candidates.push(dir.join("bin/charm"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join("go/bin/charm"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("charm")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Charm server binary was not found (CHARM_BIN, ~/go/bin/charm, PATH). \
             Install it with scripts/setup-deps \
             (go install github.com/charmbracelet/charm@v0.12.6)"
            )
        })
}

/// Four distinct ports free on 127.0.0.1 right now.
fn free_ports() -> [u16; 4] {
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind((HOST, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect();
    [ports[0], ports[1], ports[2], ports[3]]
}

fn health_ok(port: u16) -> bool {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&(HOST, port).into_addr(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}

trait IntoAddr {
    fn into_addr(self) -> std::net::SocketAddr;
}

impl IntoAddr for (&str, u16) {
    fn into_addr(self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.0.parse().expect("IP address"), self.1)
    }
}

impl CharmServer {
    /// A charm-kv [`charm_kv::Config`] equal to what [`CharmServer::env_for_client`]
    /// would give `Config::from_env`.
    pub fn client_config(&self, data_dir: &Path) -> charm_kv::Config {
        let env = self.env_for_client(data_dir);
        charm_kv::Config::from_lookup(|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("client config")
    }

    /// Runs a write of the Go client (`charm kv set|delete ...` in `data_dir`) until a
    /// charm-kv device with the same SSH key sees it after a pull (`done`). The Go
    /// client commits asynchronously and its push right after backs up from the version
    /// before, so the push can miss the write, and no later push carries it (charm/kv
    /// `KV.Commit`); a test that reads what the Go client wrote needs it on the server.
    pub fn go_kv_write(
        &self,
        data_dir: &Path,
        args: &[&str],
        done: impl Fn(&charm_kv::Kv) -> bool,
    ) {
        let verifier = self.client_dir("go-write-verifier");
        let key = data_dir.join(HOST).join("charm_ed25519");
        for _ in 0..5 {
            self.go(data_dir, args);
            let options = self.options(&verifier, Some(&key));
            let kv = charm_kv::Kv::open_with(charm_kv::DEFAULT_DATABASE, &options).unwrap();
            kv.sync().unwrap();
            if done(&kv) {
                return;
            }
        }
        panic!("the Go client's `charm {args:?}` never reached the server in 5 tries");
    }

    /// Options for a store of a device with `data_dir`, talking to this server;
    /// `identity` makes it share another device's SSH key (one account).
    pub fn options(&self, data_dir: &Path, identity: Option<&Path>) -> charm_kv::Options {
        let mut options = charm_kv::Options::new();
        options
            .data_dir(data_dir)
            .host(Some(HOST.into()))
            .ssh_port(self.ssh_port)
            .http_port(self.http_port);
        if let Some(key) = identity {
            options.identity_key(key);
        }
        options
    }
}
