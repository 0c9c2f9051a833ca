//! A TCP proxy on 127.0.0.1 in front of a real server, injecting faults on command:
//! cutting connections after a number of bytes in either direction, flipping a byte,
//! delaying, or answering every request with an HTTP 500 itself.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to the connections it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward faithfully.
    None,
    /// Close a connection once it has carried this many bytes towards the server.
    CutUpstreamAfter(u64),
    /// Close a connection once it has carried this many bytes towards the client.
    CutDownstreamAfter(u64),
    /// Flip one bit of the byte at this offset of each response stream.
    FlipDownstreamAt(u64),
    /// Wait this long before forwarding each chunk towards the client.
    DelayDownstream(Duration),
    /// Answer every request with `500 Internal Server Error` without contacting the server.
    Http500,
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    pub port: u16,
    fault: Arc<Mutex<Fault>>,
    stop: Arc<AtomicBool>,
    /// Faults applied so far (connections cut, bytes flipped, requests refused).
    pub injected: Arc<AtomicU64>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let fault = Arc::new(Mutex::new(Fault::None));
        let stop = Arc::new(AtomicBool::new(false));
        let injected = Arc::new(AtomicU64::new(0));
        let (f, s, n) = (fault.clone(), stop.clone(), injected.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let (fault, injected) = (f.clone(), n.clone());
                        std::thread::spawn(move || carry(client, upstream_port, fault, injected));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            port,
            fault,
            stop,
            injected,
        }
    }

    /// Applies at once, also to open (pooled) connections.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn carry(
    client: TcpStream,
    upstream_port: u16,
    fault: Arc<Mutex<Fault>>,
    injected: Arc<AtomicU64>,
) {
    if *fault.lock().unwrap() == Fault::Http500 {
        refuse(client, &injected);
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        return;
    };
    let (client_read, server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (up_fault, up_injected) = (fault.clone(), injected.clone());
    let up = std::thread::spawn(move || {
        pump(
            client_read,
            server_write,
            Direction::Up,
            &up_fault,
            &up_injected,
        )
    });
    pump(server, client, Direction::Down, &fault, &injected);
    let _ = up.join();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Copies `from` to `to` until either side closes or the current fault cuts it.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    direction: Direction,
    fault: &Mutex<Fault>,
    injected: &AtomicU64,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut carried = 0u64;
    loop {
        let mut n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let current = *fault.lock().unwrap();
        let span = carried..carried + n as u64;
        match (current, direction) {
            (Fault::CutUpstreamAfter(limit), Direction::Up)
            | (Fault::CutDownstreamAfter(limit), Direction::Down)
                if span.end >= limit =>
            {
                n = limit.saturating_sub(carried) as usize;
                let _ = to.write_all(&buf[..n]);
                injected.fetch_add(1, Ordering::Relaxed);
                break;
            }
            (Fault::FlipDownstreamAt(at), Direction::Down) if span.contains(&at) => {
                buf[(at - carried) as usize] ^= 0x10;
                injected.fetch_add(1, Ordering::Relaxed);
            }
            (Fault::DelayDownstream(delay), Direction::Down) => std::thread::sleep(delay),
            _ => {}
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        carried += n as u64;
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Reads one request head and answers 500 to it.
fn refuse(mut client: TcpStream, injected: &AtomicU64) {
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let body = br#"{"message":"injected failure"}"#;
    let response = format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = client.write_all(response.as_bytes());
    let _ = client.write_all(body);
    injected.fetch_add(1, Ordering::Relaxed);
    let _ = client.shutdown(Shutdown::Both);
}
