//! RPC hooks: code that runs around every request (signing, auth, zone filtering, metrics).

use rmq_protocol::RemotingCommand;

/// How a hook stops a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HookError {
    /// Reply with this code and message instead of processing (Java 5.1+ AbortProcessException).
    #[error("aborted with code {code}: {message}")]
    Abort {
        /// Response code to send.
        code: i32,
        /// Remark to send.
        message: String,
    },
    /// The hook failed; the request gets SYSTEM_ERROR with this text.
    #[error("{0}")]
    Failed(String),
}

/// Runs before each request is processed and after its response is built, in registration order
/// for both phases (as Java does). On the server both phases may change the commands in place; on
/// the client `after_response` sees the response of sync and async calls (never oneway).
/// `peer` is the remote address as "ip:port".
pub trait RpcHook: Send + Sync + 'static {
    /// Before the processor (server) or before the write (client).
    fn before_request(&self, peer: &str, request: &mut RemotingCommand) -> Result<(), HookError>;
    /// After the processor built `response` (server) or after it arrived (client). Most hooks
    /// (signing, verification) only look at requests, hence the default.
    fn after_response(
        &self,
        _peer: &str,
        _request: &RemotingCommand,
        _response: &mut RemotingCommand,
    ) -> Result<(), HookError> {
        Ok(())
    }
}
