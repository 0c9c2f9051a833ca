//! Every TCP connection the SSH leg of the client opens comes from here, so that
//! socket options are set in one place.
//!
//! `TCP_NODELAY` is on for every connection: the client's exchanges are small
//! request/answer messages, and with Nagle's algorithm a second small write waits for
//! the peer's (delayed) ACK of the first, which stalled the SSH key exchange by ~40 ms
//! per connection. Go's net package, which the original client and `charm serve` use,
//! sets it by default. The HTTP leg gets the same from its agent configuration
//! (`no_delay`, see `http.rs`).

use tokio::net::TcpStream;

/// Connects to `host:port` (every resolved address in turn) with `TCP_NODELAY` set.
pub(crate) async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    #[cfg(test)]
    opened::record(&stream);
    Ok(stream)
}

/// Test hook: what the sockets opened by this thread really had set, read back from
/// the kernel after [`connect`] configured them.
#[cfg(test)]
pub(crate) mod opened {
    use std::cell::RefCell;

    thread_local! {
        static NODELAY: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn record(stream: &tokio::net::TcpStream) {
        let nodelay = stream.nodelay().unwrap_or(false);
        NODELAY.with(|n| n.borrow_mut().push(nodelay));
    }

    /// `TCP_NODELAY` of each socket opened since the last call, in order.
    pub(crate) fn take_nodelay() -> Vec<bool> {
        NODELAY.with(|n| std::mem::take(&mut *n.borrow_mut()))
    }
}
