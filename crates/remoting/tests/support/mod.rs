//! Shared helpers for the runtime's integration tests: servers on 127.0.0.1:0, raw sockets.
#![allow(dead_code)]

use async_trait::async_trait;
use bytes::BytesMut;
use rmq_protocol::{frame::encode_to_vec, RemotingCodec, RemotingCommand};
use rmq_remoting::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

/// Answers with the request's body and ext fields (the bench convention for code 1).
pub struct Echo {
    pub seen: AtomicUsize,
}

impl Echo {
    pub fn new() -> Arc<Self> {
        Arc::new(Echo {
            seen: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl RequestProcessor for Echo {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        let mut resp = RemotingCommand::response(0, None).with_body(req.body);
        resp.ext_fields = req.ext_fields;
        Ok(Some(resp))
    }
}

/// Sleeps before answering, to hold requests in flight.
pub struct Slow(pub Duration);

#[async_trait]
impl RequestProcessor for Slow {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        tokio::time::sleep(self.0).await;
        Ok(Some(RemotingCommand::response(0, Some("slow"))))
    }
}

pub fn local_config() -> ServerConfig {
    ServerConfig {
        listen_addr: "127.0.0.1:0".into(),
        ..Default::default()
    }
}

pub async fn start(registry: ProcessorRegistry) -> RemotingServer {
    ServerBuilder::new(local_config())
        .registry(registry)
        .bind()
        .await
        .unwrap()
}

pub fn echo_registry() -> (ProcessorRegistry, Arc<Echo>) {
    let echo = Echo::new();
    let mut reg = ProcessorRegistry::new();
    reg.register(1, echo.clone(), ExecutorConfig::new(8, 100_000));
    (reg, echo)
}

/// A raw socket speaking frames, for tests that must see exactly what is (not) on the wire.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    codec: RemotingCodec,
}

impl Raw {
    pub async fn connect(addr: std::net::SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            codec: RemotingCodec::default(),
        }
    }

    /// Connects from `local` (127.0.0.x stands for another client: per-client budgets key on
    /// the source IP).
    pub async fn connect_from(local: std::net::IpAddr, addr: std::net::SocketAddr) -> Raw {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(local, 0)).unwrap();
        Raw {
            stream: socket.connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            codec: RemotingCodec::default(),
        }
    }

    pub async fn send(&mut self, cmd: &RemotingCommand) {
        self.stream
            .write_all(&encode_to_vec(cmd).unwrap())
            .await
            .unwrap();
    }

    /// The next frame, `None` on EOF or if nothing arrives within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<RemotingCommand> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(cmd) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(cmd);
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// True if the peer closed the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut scratch = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// An address nothing listens on (bound, then released).
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}
