//! SendResult and SendStatus (producer spec §7), from the broker's SendMessageResponseHeader.

use crate::route::MessageQueue;
use rmq_protocol::headers::message::SendRegionResponseHeader;
use rmq_protocol::headers::send::SendMessageResponseHeader;
use rmq_protocol::RemotingCommand;

/// How the broker stored the message (Java SendStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Code 0.
    SendOk,
    /// Code 10.
    FlushDiskTimeout,
    /// Code 12.
    FlushSlaveTimeout,
    /// Code 11.
    SlaveNotAvailable,
}

impl SendStatus {
    /// The status of a response code, `None` for codes that are errors.
    pub fn from_code(code: i32) -> Option<SendStatus> {
        match code {
            0 => Some(SendStatus::SendOk),
            10 => Some(SendStatus::FlushDiskTimeout),
            12 => Some(SendStatus::FlushSlaveTimeout),
            11 => Some(SendStatus::SlaveNotAvailable),
            _ => None,
        }
    }
}

/// What a successful send tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// Storage status.
    pub status: SendStatus,
    /// The client message id (UNIQ_KEY); comma-joined for a batch.
    pub msg_id: String,
    /// The broker's offset message id (store host + commit log offset).
    pub offset_msg_id: String,
    /// Where it was written (queue id as the broker reports it).
    pub queue: MessageQueue,
    /// Consume-queue offset.
    pub queue_offset: i64,
    /// Transaction id (the broker echoes UNIQ_KEY).
    pub transaction_id: Option<String>,
    /// Region (MSG_REGION, default "DefaultRegion").
    pub region_id: String,
    /// Whether tracing is on for the message (TRACE_ON != "false").
    pub trace_on: bool,
}

impl SendResult {
    /// Decodes a response with a SendStatus code; `None` if its header is unreadable.
    pub fn from_response(
        resp: &RemotingCommand,
        msg_id: &str,
        queue: &MessageQueue,
    ) -> Result<SendResult, String> {
        let status = SendStatus::from_code(resp.code)
            .ok_or_else(|| format!("code {} is not a send status", resp.code))?;
        let h: SendMessageResponseHeader = resp.decode_header().map_err(|e| e.to_string())?;
        // A broker that leaves the region fields out (not Java's) reads as Java's defaults.
        let region = resp
            .decode_header::<SendRegionResponseHeader>()
            .unwrap_or_else(|_| SendRegionResponseHeader {
                msg_region: "DefaultRegion".into(),
                trace_on: true,
            });
        Ok(SendResult {
            status,
            msg_id: msg_id.to_owned(),
            offset_msg_id: h.msg_id,
            queue: MessageQueue {
                queue_id: h.queue_id,
                ..queue.clone()
            },
            queue_offset: h.queue_offset,
            transaction_id: h.transaction_id,
            region_id: region.msg_region,
            trace_on: region.trace_on,
        })
    }
}
