//! The runtime's one error type.

use rmq_protocol::ProtocolError;

/// Why an invocation or a server operation failed, by kind, so callers branch on the variant
/// (retry elsewhere on `Connect`/`Closed`, back off on `TooManyRequests`...), never on text.
/// Every variant that involves a peer names it. More kinds may come: match with a wildcard.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
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
    /// The connection closed before the request was written or answered: the peer went away,
    /// or this side closed it (Java RemotingSendRequestException).
    #[error("send request to <{addr}> failed: connection closed")]
    Closed {
        /// Peer address.
        addr: String,
    },
    /// The server is shutting down gracefully and answered GO_AWAY to the request and to its
    /// resend on a new connection.
    #[error("send request to <{addr}> failed: Receive GO_AWAY twice in request")]
    GoAway {
        /// Peer address.
        addr: String,
    },
    /// The request could not be sent for another reason (a client hook refused it, its opaque
    /// was already pending...) (Java RemotingSendRequestException).
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
        RemotingError::Closed {
            addr: addr.to_owned(),
        }
    }

    /// True for the failures that say the peer cannot be reached at all (the dial failed, or
    /// the connection died under the request), as opposed to a slow or refusing peer.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            RemotingError::Connect { .. } | RemotingError::Closed { .. }
        )
    }
}
