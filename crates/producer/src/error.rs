//! Producer errors, naming the broker and its remark where there is one.

use rmq_remoting::RemotingError;

/// Why a send failed. More kinds may come: match with a wildcard.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// Refused before sending (topic, body size...): Java's MQClientException code 13.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// Bad producer settings.
    #[error("producer configuration: {0}")]
    Config(String),
    /// No route: the topic (and TBW102) is unknown to the NameServers.
    #[error("no route info of this topic: {0}")]
    NoRoute(String),
    /// The broker answered with an error code.
    #[error("broker {broker_addr} answered code {code}: {remark}")]
    Broker {
        /// Response code.
        code: i32,
        /// Response remark.
        remark: String,
        /// The broker.
        broker_addr: String,
    },
    /// Connect, send or timeout failure.
    #[error(transparent)]
    Remoting(#[from] RemotingError),
    /// The whole send (all attempts) ran out of time.
    #[error("send timed out after {0} ms")]
    Timeout(u64),
    /// The producer was shut down.
    #[error("the producer is shut down")]
    Shutdown,
}

/// Broker codes after which a sync send tries another broker (Java retryResponseCodes).
pub const RETRY_CODES: &[i32] = &[17, 14, 1, 2, 16, 204, 205, 1500];

impl ProducerError {
    /// Whether another attempt (on another broker) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProducerError::Broker { code, .. } => RETRY_CODES.contains(code),
            ProducerError::Remoting(_) => true,
            _ => false,
        }
    }
}
