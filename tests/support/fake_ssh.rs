//! A minimal SSH server (russh) that accepts any key and answers every `exec` with
//! fixed or computed bytes: for testing how the client treats a broken or hostile
//! `api-auth` answer, which the real server cannot be made to produce on demand.

use std::net::TcpListener as StdListener;
use std::sync::Arc;

use russh::server::{self, Auth, ChannelOpenHandle, Msg, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};

/// What the server answers to each `exec`.
pub type Reply = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

/// Starts the server on 127.0.0.1 on a background thread; returns its port. It runs
/// until the test process exits.
pub fn start(reply: &'static [u8]) -> u16 {
    start_on("127.0.0.1".parse().expect("address"), reply)
}

/// [`start`] on another address of this machine.
pub fn start_on(ip: std::net::IpAddr, reply: &'static [u8]) -> u16 {
    start_with_on(ip, Arc::new(move || reply.to_vec()))
}

/// [`start`] with an answer computed at each `exec`.
pub fn start_with(reply: Reply) -> u16 {
    start_with_on("127.0.0.1".parse().expect("address"), reply)
}

fn start_with_on(ip: std::net::IpAddr, reply: Reply) -> u16 {
    let listener = StdListener::bind((ip, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let host_key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .expect("host key");
    let host_key = russh::keys::PrivateKey::from_bytes(&host_key.to_bytes().expect("encode"))
        .expect("host key for russh");
    let config = Arc::new(server::Config {
        keys: vec![host_key],
        auth_rejection_time: std::time::Duration::from_millis(10),
        ..Default::default()
    });
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = FakeServer { reply }.run_on_socket(config, &listener).await;
        });
    });
    port
}

#[derive(Clone)]
struct FakeServer {
    reply: Reply,
}

impl server::Server for FakeServer {
    type Handler = Self;
    fn new_client(&mut self, _: Option<std::net::SocketAddr>) -> Self {
        self.clone()
    }
}

impl server::Handler for FakeServer {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _: &str,
        _: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        _: Channel<Msg>,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let reply = (self.reply)();
        if !reply.is_empty() {
            session.data(channel, reply)?;
        }
        session.exit_status_request(channel, 0)?;
        session.eof(channel)?;
        session.close(channel)?;
        Ok(())
    }
}
