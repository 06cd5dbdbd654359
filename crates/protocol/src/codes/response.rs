//! `RemotingSysResponseCode` + `ResponseCode`: what a response says.
//!
//! Codes 209-211 mean different things in 4.9 and 5.x; the 5.x meaning is used here.

macro_rules! code_table {
    ($( $(#[$m:meta])* $name:ident = $val:expr ),* $(,)?) => {
        $( $(#[$m])* pub const $name: i32 = $val; )*
        /// The Java constant name of a known response code, for logs and CLI output.
        pub fn name(code: i32) -> Option<&'static str> {
            match code {
                $( $val => Some(stringify!($name)), )*
                _ => None,
            }
        }
    };
}

code_table! {
    /// The request succeeded.
    SUCCESS = 0,
    /// The handler failed; the remark says why.
    SYSTEM_ERROR = 1,
    /// Flow control: reject or overload (see the remark prefix).
    SYSTEM_BUSY = 2,
    /// No processor for that request code.
    REQUEST_CODE_NOT_SUPPORTED = 3,
    /// Transaction failed.
    TRANSACTION_FAILED = 4,
    /// Broker: flush to disk timed out (message stored).
    FLUSH_DISK_TIMEOUT = 10,
    /// Broker: no slave to replicate to.
    SLAVE_NOT_AVAILABLE = 11,
    /// Broker: replication to the slave timed out.
    FLUSH_SLAVE_TIMEOUT = 12,
    /// Broker: message rejected as illegal.
    MESSAGE_ILLEGAL = 13,
    /// Broker: service not available.
    SERVICE_NOT_AVAILABLE = 14,
    /// Version not supported.
    VERSION_NOT_SUPPORTED = 15,
    /// Permission denied (also the config black list and ACL 2.0 failures).
    NO_PERMISSION = 16,
    /// No route for the topic.
    TOPIC_NOT_EXIST = 17,
    /// Topic exists already.
    TOPIC_EXIST_ALREADY = 18,
    /// Pull found nothing.
    PULL_NOT_FOUND = 19,
    /// Pull again at once.
    PULL_RETRY_IMMEDIATELY = 20,
    /// Pull offset moved.
    PULL_OFFSET_MOVED = 21,
    /// Query found nothing (also missing KV config).
    QUERY_NOT_FOUND = 22,
    /// Subscription expression did not parse.
    SUBSCRIPTION_PARSE_FAILED = 23,
    /// Subscription unknown.
    SUBSCRIPTION_NOT_EXIST = 24,
    /// Subscription outdated.
    SUBSCRIPTION_NOT_LATEST = 25,
    /// Subscription group unknown.
    SUBSCRIPTION_GROUP_NOT_EXIST = 26,
    /// Filter data unknown.
    FILTER_DATA_NOT_EXIST = 27,
    /// Filter data outdated.
    FILTER_DATA_NOT_LATEST = 28,
    /// Invalid parameter (5.x).
    INVALID_PARAMETER = 29,
    /// Transaction should commit.
    TRANSACTION_SHOULD_COMMIT = 200,
    /// Transaction should roll back.
    TRANSACTION_SHOULD_ROLLBACK = 201,
    /// Transaction state unknown.
    TRANSACTION_STATE_UNKNOW = 202,
    /// Transaction group wrong.
    TRANSACTION_STATE_GROUP_WRONG = 203,
    /// No buyer id.
    NO_BUYER_ID = 204,
    /// Not in current unit.
    NOT_IN_CURRENT_UNIT = 205,
    /// Consumer not online.
    CONSUMER_NOT_ONLINE = 206,
    /// Consumption timed out.
    CONSUME_MSG_TIMEOUT = 207,
    /// No message.
    NO_MESSAGE = 208,
    /// 5.x: polling queue full (4.9: ACL config update failed).
    POLLING_FULL = 209,
    /// 5.x: polling timed out.
    POLLING_TIMEOUT = 210,
    /// 5.x: broker does not exist.
    BROKER_NOT_EXIST = 211,
    /// 5.x: dispatch not complete.
    BROKER_DISPATCH_NOT_COMPLETE = 212,
    /// 5.x: broadcast consumption.
    BROADCAST_CONSUMPTION = 213,
    /// 5.x: flow control.
    FLOW_CONTROL = 215,
    /// Not leader for the queue.
    NOT_LEADER_FOR_QUEUE = 501,
    /// Illegal operation.
    ILLEGAL_OPERATION = 604,
    /// 5.2+: server is shutting down gracefully, reconnect elsewhere.
    GO_AWAY = 1500,
    /// 5.3+ auth: user does not exist.
    USER_NOT_EXIST = 3001,
    /// 5.3+ auth: policy does not exist.
    POLICY_NOT_EXIST = 3002,
}

/// Remark of a reply to a request code nobody handles (note the leading space, as in Java).
pub fn not_supported_remark(code: i32) -> String {
    format!(" request type {code} not supported")
}

/// Remark when a processor asks to reject requests (`rejectRequest()`).
pub const REJECT_REQUEST_REMARK: &str =
    "[REJECTREQUEST]system busy, start flow control for a while";
/// Remark when a processor's executor queue is full.
pub const OVERLOAD_REMARK: &str = "[OVERLOAD]system busy, start flow control for a while";
/// Remark of GO_AWAY during a graceful shutdown.
pub const GO_AWAY_REMARK: &str = "please go away";

#[cfg(test)]
mod tests {
    #[test]
    fn remarks_match_java() {
        assert_eq!(
            super::not_supported_remark(999),
            " request type 999 not supported"
        );
        assert_eq!(super::name(1500), Some("GO_AWAY"));
    }
}
