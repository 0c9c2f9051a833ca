//! Sync through a fault-injecting proxy in front of a real `charm serve`: cut, corrupted,
//! delayed and refused HTTP traffic. After every fault the local database is intact and
//! usable, no temporary file is left, and the next clean sync converges.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use charm_kv::{ErrorKind, Kv, Options};
use support::charm_server::{CharmServer, HOST};
use support::fault_proxy::{Fault, FaultProxy};

const DB: &str = "faults";

fn options(server: &CharmServer, dir: &Path, http_port: u16, identity: Option<&Path>) -> Options {
    let mut options = server.options(dir, identity);
    options.http_port(http_port).auto_push(false);
    options
}

fn contents(kv: &Kv) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.iter().unwrap().map(Result::unwrap).collect()
}

fn leftover_temp_files(kv: &Kv) -> Vec<PathBuf> {
    let db = kv.path().unwrap();
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

/// A writer (direct) with ~400 KB pushed, and a reader of the same account behind the proxy.
fn setup(server: &CharmServer, proxy: &FaultProxy) -> (Kv, Kv) {
    let (d1, d2) = (server.client_dir("direct"), server.client_dir("proxied"));
    let writer = Kv::open_with(DB, &options(server, &d1, server.http_port, None)).unwrap();
    let mut batch = writer.batch();
    for i in 0..400 {
        batch.set(format!("remote{i:03}"), vec![i as u8; 1000]);
    }
    batch.commit().unwrap();
    writer.sync().unwrap();
    let key = d1.join(HOST).join("charm_ed25519");
    let reader = Kv::open_with(DB, &options(server, &d2, proxy.port, Some(&key))).unwrap();
    reader.set("local", "must survive").unwrap();
    (writer, reader)
}

fn assert_intact(reader: &Kv) {
    assert_eq!(reader.get("local").unwrap(), b"must survive");
    assert_eq!(
        reader.keys().unwrap(),
        vec![b"local".to_vec()],
        "nothing half-applied"
    );
    assert!(
        leftover_temp_files(reader).is_empty(),
        "{:?}",
        leftover_temp_files(reader)
    );
    reader.set("still", "writable").unwrap();
    reader.delete("still").unwrap();
}

#[test]
fn downloads_cut_or_corrupted_midway_change_nothing() {
    let server = CharmServer::start();
    let proxy = FaultProxy::start(server.http_port);
    let (writer, reader) = setup(&server, &proxy);

    proxy.set(Fault::CutDownstreamAfter(150_000));
    let err = reader.sync().unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Network | ErrorKind::Corrupt),
        "{err}"
    );
    assert_intact(&reader);

    proxy.set(Fault::FlipDownstreamAt(120_000));
    let err = reader.sync().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_intact(&reader);
    assert!(proxy.injected.load(std::sync::atomic::Ordering::Relaxed) >= 2);

    proxy.set(Fault::None);
    reader.sync().unwrap();
    writer.sync().unwrap();
    assert_eq!(contents(&reader), contents(&writer));
    assert_eq!(contents(&reader).len(), 401);
    eprintln!(
        "sync faults: downloads cut and corrupted, {} faults injected, converged",
        proxy.injected.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn uploads_cut_midway_stay_pending_and_go_through_later() {
    let server = CharmServer::start();
    let proxy = FaultProxy::start(server.http_port);
    let (writer, reader) = setup(&server, &proxy);
    proxy.set(Fault::None);
    reader.sync().unwrap();
    let mut batch = reader.batch();
    for i in 0..300 {
        batch.set(format!("proxied{i:03}"), vec![7u8; 1000]);
    }
    batch.commit().unwrap();
    let pending = reader.pending_writes().unwrap();
    assert_eq!(pending, 300);

    proxy.set(Fault::CutUpstreamAfter(200_000));
    let err = reader.sync().unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Network | ErrorKind::Server),
        "{err}"
    );
    assert_eq!(
        reader.pending_writes().unwrap(),
        pending,
        "nothing marked pushed"
    );
    assert!(leftover_temp_files(&reader).is_empty());

    proxy.set(Fault::None);
    reader.sync().unwrap();
    assert_eq!(reader.pending_writes().unwrap(), 0);
    writer.sync().unwrap();
    assert_eq!(contents(&writer), contents(&reader));
    assert_eq!(contents(&writer).len(), 701);
}

#[test]
fn server_errors_and_slow_links() {
    let server = CharmServer::start();
    let proxy = FaultProxy::start(server.http_port);
    let (writer, reader) = setup(&server, &proxy);

    proxy.set(Fault::Http500);
    let err = reader.sync().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    assert_intact(&reader);

    proxy.set(Fault::DelayDownstream(Duration::from_millis(5)));
    reader.sync().unwrap();
    assert_eq!(contents(&reader).len(), 401);
    proxy.set(Fault::None);
    writer.sync().unwrap();
    assert_eq!(contents(&writer), contents(&reader));
}
