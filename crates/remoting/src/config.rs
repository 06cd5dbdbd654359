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
    /// Frames queued for writing on one connection before senders wait.
    pub write_queue_frames: usize,
    /// Bytes queued for writing on one connection (until the socket takes them) before senders
    /// wait. A reply larger than this waits for an empty queue and then goes alone.
    pub write_queue_bytes: usize,
    /// Bytes queued for writing on all connections together before senders wait; a connection
    /// with nothing queued may always queue one frame, so connections that stop reading slow the
    /// others at worst to one queued reply at a time, never to none.
    pub write_queue_bytes_total: usize,
    /// A connection that accepts no byte of its pending output for this long is closed.
    pub write_stall_timeout: Duration,
    /// Requests from one connection being processed or waiting for their reply to be queued before
    /// the server stops reading that connection (back-pressure, never loss).
    pub max_inflight_per_connection: usize,
    /// Bytes of one connection's requests being processed at once; past it, that connection is
    /// not read until some finish. A larger frame is admitted alone.
    pub max_request_bytes_per_connection: usize,
    /// Bytes of requests being processed on all connections together; past it, connections
    /// with a new request wait (read back-pressure) instead of the process allocating more.
    pub max_request_bytes_total: usize,
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
    /// Sources whose PROXY headers are believed (`proxyProtocolTrustedSources`: addresses or
    /// CIDR networks). A PROXY header from any other source is not read (it fails as a frame and
    /// closes that connection), so no client can claim another's address. Default: loopback.
    pub proxy_protocol_trusted_sources: Vec<crate::preamble::TrustedSource>,
    /// Connections held at once; more are closed at accept (0 = no limit). Java has no limit;
    /// ours bounds memory (see the README's Limits).
    pub max_connections: usize,
    /// Connections one client (a source IP, the PROXY header's when trusted) may hold at once;
    /// more are closed at accept (0 = no limit). Java has no limit. A gateway or NAT that
    /// funnels many clients through one address needs it raised.
    pub max_connections_per_client: usize,
    /// Bytes of requests being processed for one client (all its connections together); past
    /// it, that client's connections are not read until some finish, so a client that opens
    /// many connections gets one budget, not one per connection (0 = no limit).
    pub max_request_bytes_per_client: usize,
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
            write_queue_bytes: 1024 * 1024,
            write_queue_bytes_total: 256 * 1024 * 1024,
            write_stall_timeout: Duration::from_secs(30),
            max_inflight_per_connection: 4096,
            max_request_bytes_per_connection: 4 * 1024 * 1024,
            max_request_bytes_total: 256 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            language: LanguageCode::RUST,
            version: MqVersion::CURRENT,
            tls: None,
            proxy_protocol: true,
            proxy_protocol_trusted_sources: crate::preamble::TrustedSource::loopback(),
            max_connections: 10_000,
            max_connections_per_client: 1_000,
            max_request_bytes_per_client: 64 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Remoting client settings (Java `NettyClientConfig`).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Connect timeout (Java connectTimeoutMillis = 3000).
    pub connect_timeout: Duration,
    /// Source address to dial from (None: the system's choice). Java has none; a multi-homed
    /// host uses it to pick its interface, and tests to stand for several clients (127.0.0.x).
    pub local_ip: Option<std::net::IpAddr>,
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
    /// Close the connection when an async call (future or callback) times out. Java does not: a
    /// timed-out async request fails alone and the others on the connection carry on.
    pub close_socket_if_async_timeout: bool,
    /// Largest whole frame accepted.
    pub max_frame_length: usize,
    /// Frames queued for writing per connection before senders wait.
    pub write_queue_frames: usize,
    /// Bytes queued for writing per connection before senders wait (a larger request goes alone).
    pub write_queue_bytes: usize,
    /// A connection that accepts no byte of its pending output for this long is closed.
    pub write_stall_timeout: Duration,
    /// Requests the peer pushes to us (CHECK_TRANSACTION_STATE...) in flight per connection.
    pub max_inflight_per_connection: usize,
    /// Bytes of requests the peer pushes to us being processed per connection.
    pub max_request_bytes_per_connection: usize,
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
            local_ip: None,
            lock_timeout: Duration::from_millis(3000),
            async_permits: 65535,
            oneway_permits: 65535,
            idle_timeout: Duration::from_secs(120),
            close_socket_if_timeout: true,
            close_socket_if_async_timeout: false,
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            write_queue_frames: 4096,
            write_queue_bytes: 4 * 1024 * 1024,
            write_stall_timeout: Duration::from_secs(30),
            max_inflight_per_connection: 1024,
            max_request_bytes_per_connection: 4 * 1024 * 1024,
            language: LanguageCode::RUST,
            version: MqVersion::CURRENT,
            tls: None,
            reconnect_for_go_away: true,
        }
    }
}
