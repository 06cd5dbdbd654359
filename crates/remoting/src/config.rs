//! Server and client configuration, with the Java defaults (spec §3.9).

use crate::tls::{ClientTlsConfig, ServerTlsConfig};
use rmq_protocol::{LanguageCode, MqVersion, DEFAULT_MAX_FRAME_LENGTH};
use std::time::Duration;

/// Remoting server settings (Java `NettyServerConfig` plus rmq's bounds).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// "ip:port" to listen on; port 0 picks a free port (see `RemotingServer::local_addr`).
    pub listen_addr: String,
    /// Close a connection with no traffic either way for this long (Java serverChannelMaxIdleTimeSeconds = 120).
    pub idle_timeout: Duration,
    /// Largest whole frame accepted (Java com.rocketmq.remoting.frameMaxLength = 16 MiB).
    pub max_frame_length: usize,
    /// Default executor for processors registered without their own: concurrent tasks
    /// (Java serverCallbackExecutorThreads, 0 => 4).
    pub default_executor_concurrency: usize,
    /// Default executor queue bound: requests waiting beyond it get `[OVERLOAD]`.
    pub default_executor_queue: usize,
    /// Frames queued for writing on one connection before senders wait (the write-buffer
    /// high-water mark, counted in frames).
    pub write_queue_frames: usize,
    /// Requests from one connection being processed or waiting for their reply to be queued before
    /// the server stops reading that connection (back-pressure, never loss).
    pub max_inflight_per_connection: usize,
    /// Graceful shutdown: how long new requests from clients newer than V5_3_1 get GO_AWAY
    /// (Java shutdownWaitTimeSeconds = 30).
    pub shutdown_grace: Duration,
    /// Language written on responses.
    pub language: LanguageCode,
    /// Version written on responses (the server's MQVersion, as Java does).
    pub version: i32,
    /// TLS: None serves plaintext only (a TLS handshake is refused, like Java's DISABLED).
    pub tls: Option<ServerTlsConfig>,
    /// Detect and read an HAProxy PROXY v1/v2 header on new connections (Java 5.1.4+: always).
    pub proxy_protocol: bool,
    /// Connections held at once; more are closed at accept (0 = no limit).
    pub max_connections: usize,
    /// A new connection must complete its PROXY header, TLS handshake and first frame within this,
    /// so a silent client cannot hold a slot (slow-loris).
    pub handshake_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen_addr: "0.0.0.0:0".into(),
            idle_timeout: Duration::from_secs(120),
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            default_executor_concurrency: 4,
            default_executor_queue: 10_000,
            write_queue_frames: 4096,
            max_inflight_per_connection: 4096,
            shutdown_grace: Duration::from_secs(30),
            language: LanguageCode::RUST,
            version: MqVersion::CURRENT,
            tls: None,
            proxy_protocol: true,
            max_connections: 0,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Remoting client settings (Java `NettyClientConfig`).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Connect timeout (Java connectTimeoutMillis = 3000).
    pub connect_timeout: Duration,
    /// Longest wait for the connection-table lock when dialling (Java LOCK_TIMEOUT_MILLIS = 3000).
    pub lock_timeout: Duration,
    /// Async invocations in flight (Java clientAsyncSemaphoreValue = 65535); sync ones count too (5.2+).
    pub async_permits: usize,
    /// Oneway invocations being written (Java clientOnewaySemaphoreValue = 65535).
    pub oneway_permits: usize,
    /// Idle close (Java clientChannelMaxIdleTimeSeconds = 120).
    pub idle_timeout: Duration,
    /// Close the connection when a sync call times out (Java clientCloseSocketIfTimeout = true).
    pub close_socket_if_timeout: bool,
    /// Largest whole frame accepted.
    pub max_frame_length: usize,
    /// Frames queued for writing per connection before senders wait.
    pub write_queue_frames: usize,
    /// Requests the peer pushes to us (CHECK_TRANSACTION_STATE...) in flight per connection.
    pub max_inflight_per_connection: usize,
    /// Language written on requests.
    pub language: LanguageCode,
    /// Version written on requests.
    pub version: i32,
    /// Dial every connection with TLS (Java `useTLS` / `tls.enable`).
    pub tls: Option<ClientTlsConfig>,
    /// On a GO_AWAY (1500) answer from a server shutting down gracefully, dial that address anew
    /// and send the request once more (Java `enableReconnectForGoAway` = true).
    pub reconnect_for_go_away: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_millis(3000),
            lock_timeout: Duration::from_millis(3000),
            async_permits: 65535,
            oneway_permits: 65535,
            idle_timeout: Duration::from_secs(120),
            close_socket_if_timeout: true,
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            write_queue_frames: 4096,
            max_inflight_per_connection: 1024,
            language: LanguageCode::RUST,
            version: MqVersion::CURRENT,
            tls: None,
            reconnect_for_go_away: true,
        }
    }
}
