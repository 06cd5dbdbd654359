//! The ACL hooks over real sockets: a signed client is served, a forged secret, a tampered body,
//! a missing or unknown AccessKey are refused with the 5.3 broker's NO_PERMISSION messages, and
//! refused requests never reach the processor.

use async_trait::async_trait;
use bytes::BytesMut;
use rmq_acl::{AclClientHook, AclServerHook, Credentials};
use rmq_protocol::frame::encode_to_vec;
use rmq_protocol::{RemotingCodec, RemotingCommand};
use rmq_remoting::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;

/// Answers with the request's body, counting what it saw.
struct Echo {
    seen: AtomicUsize,
}

#[async_trait]
impl RequestProcessor for Echo {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        Ok(Some(RemotingCommand::response(0, None).with_body(req.body)))
    }
}

fn echo_registry() -> (ProcessorRegistry, Arc<Echo>) {
    let echo = Arc::new(Echo {
        seen: AtomicUsize::new(0),
    });
    let mut reg = ProcessorRegistry::new();
    reg.register(1, echo.clone(), ExecutorConfig::new(8, 1000));
    (reg, echo)
}

fn local_config() -> ServerConfig {
    ServerConfig {
        listen_addr: "127.0.0.1:0".into(),
        ..Default::default()
    }
}

/// Sends one frame as written (no client hooks) and reads the answer.
async fn send_raw(addr: std::net::SocketAddr, req: &RemotingCommand) -> RemotingCommand {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&encode_to_vec(req).unwrap()).await.unwrap();
    let mut buf = BytesMut::new();
    let mut codec = RemotingCodec::default();
    loop {
        if let Some(cmd) = codec.decode(&mut buf).unwrap() {
            return cmd;
        }
        let n = tokio::time::timeout(Duration::from_secs(2), s.read_buf(&mut buf))
            .await
            .expect("answered in time")
            .unwrap();
        assert!(n > 0, "closed before answering");
    }
}

#[tokio::test]
async fn acl_signs_verifies_and_refuses_forgeries() {
    let creds = Credentials {
        access_key: "rocketmq2".into(),
        secret_key: "12345678".into(),
        security_token: None,
    };
    let (reg, echo) = echo_registry();
    let server = ServerBuilder::new(local_config())
        .registry(reg)
        .hook(Arc::new(AclServerHook::new([creds.clone()])))
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    let signer = ClientBuilder::new(ClientConfig::default())
        .hook(Arc::new(AclClientHook::new(creds.clone())))
        .build();
    let r = signer
        .invoke_sync(
            &addr,
            RemotingCommand::request(1)
                .with_ext("topic", "TopicTest")
                .with_body("hello"),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!((r.code, &r.body[..]), (0, &b"hello"[..]));
    // A forger knows the access key, not the secret.
    let forger = ClientBuilder::new(ClientConfig::default())
        .hook(Arc::new(AclClientHook::new(Credentials {
            secret_key: "guess".into(),
            ..creds.clone()
        })))
        .build();
    let r = forger
        .invoke_sync(
            &addr,
            RemotingCommand::request(1).with_body("x"),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.code, r.remark_str()),
        (16, Some("check signature failed."))
    );
    // Tampering after signing (body changed) is caught too.
    let mut req = RemotingCommand::request(1).with_body("original");
    AclClientHook::new(creds.clone())
        .before_request("", &mut req)
        .unwrap();
    req.body = bytes::Bytes::from_static(b"tampered");
    assert_eq!(send_raw(server.local_addr(), &req).await.code, 16);
    let plain = RemotingClient::new(ClientConfig::default());
    let r = plain
        .invoke_sync(&addr, RemotingCommand::request(1), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        (r.code, r.remark_str()),
        (16, Some("username cannot be null."))
    );
    let stranger = ClientBuilder::new(ClientConfig::default())
        .hook(Arc::new(AclClientHook::new(Credentials {
            access_key: "nobody".into(),
            ..creds.clone()
        })))
        .build();
    let r = stranger
        .invoke_sync(&addr, RemotingCommand::request(1), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(r.remark_str(), Some("User:nobody is not found."));
    // Refused requests never reached the processor; the signer's connection is unaffected.
    assert_eq!(echo.seen.load(Ordering::SeqCst), 1);
    let r = signer
        .invoke_sync(
            &addr,
            RemotingCommand::request(1).with_body("again"),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"again");
}
