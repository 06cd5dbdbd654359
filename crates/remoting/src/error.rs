//! The runtime's one error type.

use rmq_protocol::ProtocolError;

/// Why an invocation or a server operation failed. Every variant names the peer involved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemotingError {
    /// Could not connect (refused, unreachable, connect timeout, or the connection-table lock wait).
    #[error("connect to {addr} failed: {reason}")]
    Connect {
        /// Peer address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// No response within the timeout (Java RemotingTimeoutException).
    #[error("wait response on the channel <{addr}> timeout, {timeout_ms}(ms)")]
    Timeout {
        /// Peer address.
        addr: String,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The request could not be written, or the connection died before its response arrived
    /// (Java RemotingSendRequestException).
    #[error("send request to <{addr}> failed: {reason}")]
    SendRequest {
        /// Peer address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// Flow control: no permit and the caller would not wait (Java RemotingTooMuchRequestException).
    #[error("{0}")]
    TooManyRequests(String),
    /// Flow control: no permit within the timeout.
    #[error("{0}")]
    PermitTimeout(String),
    /// The frame could not be encoded (e.g. larger than the max frame length).
    #[error("protocol error talking to {addr}: {reason}")]
    Protocol {
        /// Peer address.
        addr: String,
        /// The codec's error text.
        reason: String,
    },
    /// Binding the listener failed.
    #[error("bind {addr} failed: {reason}")]
    Bind {
        /// Address to bind.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The client or server was shut down.
    #[error("remoting instance is shut down")]
    Shutdown,
    /// No NameServer address is configured.
    #[error("no NameServer address configured")]
    NoNamesrv,
}

impl RemotingError {
    pub(crate) fn protocol(addr: &str, e: &ProtocolError) -> Self {
        RemotingError::Protocol {
            addr: addr.to_owned(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn closed(addr: &str) -> Self {
        RemotingError::SendRequest {
            addr: addr.to_owned(),
            reason: "connection closed".into(),
        }
    }
}
