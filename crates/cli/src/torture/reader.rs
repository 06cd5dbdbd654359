//! Reads a queue back the way consumers do, through PULL_MESSAGE (the typed
//! `PullMessageRequestHeader`, no suspension, no commit), from its min offset to its max, and
//! notes every way the answers break the pull contract: offsets skipped with no message
//! (pre-blank placeholders, a next offset jumping ahead), records whose own queue offset is not
//! the one they were served at, records that do not decode. Counting offsets is not proof; only
//! what comes back is.

use rmq_message::record::{self, Found};
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
use rmq_protocol::RemotingCommand;
use rmq_remoting::RemotingClient;
use std::time::{Duration, Instant};

/// The group the reads pull as (created by the broker on first use).
pub const CHECK_GROUP: &str = "TortureCheck";

/// Messages asked per pull (the broker's default transfer cap).
const PULL_BATCH: i32 = 32;

/// What one read of a queue found.
#[derive(Debug, Clone, Default)]
pub struct QueueRead {
    /// The topic.
    pub topic: String,
    /// The queue id.
    pub queue_id: i32,
    /// GET_MIN_OFFSET before the read.
    pub min: i64,
    /// GET_MAX_OFFSET before the read: the read covers `min..max`.
    pub max: i64,
    /// (queue offset, the body's counter or why it is not one of ours), in offset order.
    pub entries: Vec<(i64, Result<u64, String>)>,
    /// Offset ranges `[from, to)` inside `min..max` that no message came back for.
    pub gaps: Vec<(i64, i64)>,
    /// Answers that break the contract otherwise (one line each).
    pub problems: Vec<String>,
}

/// One request with a deadline: the answer or why there is none.
async fn invoke(
    client: &RemotingClient,
    broker: &str,
    cmd: RemotingCommand,
    timeout: Duration,
) -> Result<RemotingCommand, String> {
    let code = cmd.code;
    client
        .invoke_sync(broker, cmd, timeout)
        .await
        .map_err(|e| format!("request {code} to {broker}: {e}"))
}

/// GET_MIN_OFFSET or GET_MAX_OFFSET of a queue.
pub async fn queue_offset(
    client: &RemotingClient,
    broker: &str,
    code: i32,
    topic: &str,
    queue_id: i32,
    timeout: Duration,
) -> Result<i64, String> {
    let header = rmq_protocol::headers::offset::GetMinOffsetRequestHeader {
        topic: topic.to_owned(),
        queue_id,
        bname: None,
    };
    let cmd = RemotingCommand::request_with_header(code, &header);
    let r = invoke(client, broker, cmd, timeout).await?;
    if r.code != response::SUCCESS {
        return Err(format!(
            "request {code} for {topic}/{queue_id}: code {} {:?}",
            r.code,
            r.remark_str().unwrap_or("")
        ));
    }
    r.decode_header::<rmq_protocol::headers::offset::OffsetResponseHeader>()
        .map(|h| h.offset)
        .map_err(|_| format!("request {code} for {topic}/{queue_id}: no offset in the answer"))
}

/// QUERY_CONSUMER_OFFSET: the group's committed offset of a queue (`None`: none committed).
pub async fn committed_offset(
    client: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queue_id: i32,
    timeout: Duration,
) -> Result<Option<i64>, String> {
    let query = rmq_model::client_call::QueryConsumerOffset::new(group, topic, queue_id);
    let cmd = rmq_model::Call::command(&query);
    let r = invoke(client, broker, cmd, timeout).await?;
    match r.code {
        response::SUCCESS => Ok(r
            .decode_header::<rmq_protocol::headers::offset::QueryConsumerOffsetResponseHeader>()
            .ok()
            .map(|h| h.offset)),
        response::QUERY_NOT_FOUND => Ok(None),
        c => Err(format!(
            "QUERY_CONSUMER_OFFSET {group} {topic}/{queue_id}: code {c} {:?}",
            r.remark_str().unwrap_or("")
        )),
    }
}

fn pull_request(topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    // The subscription is in the header; no suspension, no commit.
    let header = PullMessageRequestHeader {
        max_msg_nums: PULL_BATCH,
        ..PullMessageRequestHeader::subscribed(CHECK_GROUP, topic, queue_id, offset, "*")
    };
    RemotingCommand::request_with_header(rc::PULL_MESSAGE, &header)
}

/// Reads `topic`/`queue_id` from its min offset to its max through PULL_MESSAGE, naming each
/// body with `id_of`. `Err` only when the broker cannot be asked at all.
pub async fn read_queue(
    client: &RemotingClient,
    broker: &str,
    topic: &str,
    queue_id: i32,
    id_of: &dyn Fn(&[u8]) -> Result<u64, String>,
    deadline: Instant,
) -> Result<QueueRead, String> {
    let timeout = Duration::from_secs(10);
    let min = queue_offset(client, broker, rc::GET_MIN_OFFSET, topic, queue_id, timeout).await?;
    let max = queue_offset(client, broker, rc::GET_MAX_OFFSET, topic, queue_id, timeout).await?;
    let mut read = QueueRead {
        topic: topic.to_owned(),
        queue_id,
        min,
        max,
        ..QueueRead::default()
    };
    let name = format!("{topic}/{queue_id}");
    let mut cur = min;
    let mut idle_retries = 0;
    while cur < max {
        if Instant::now() > deadline {
            read.problems.push(format!(
                "{name}: read not finished by its deadline at offset {cur} of {max}"
            ));
            break;
        }
        let r = invoke(client, broker, pull_request(topic, queue_id, cur), timeout).await?;
        let header = match r.code {
            response::SUCCESS
            | response::PULL_NOT_FOUND
            | response::PULL_RETRY_IMMEDIATELY
            | response::PULL_OFFSET_MOVED => r.decode_header::<PullMessageResponseHeader>(),
            c => {
                read.problems.push(format!(
                    "{name}: pull at offset {cur} refused: code {c} {:?}",
                    r.remark_str().unwrap_or("")
                ));
                break;
            }
        };
        let h = match header {
            Ok(h) => h,
            Err(e) => {
                read.problems.push(format!(
                    "{name}: pull answer at offset {cur}: bad header: {e}"
                ));
                break;
            }
        };
        let next = h.next_begin_offset;
        match r.code {
            response::SUCCESS => {
                let before = read.entries.len();
                if let Err(p) = take_records(&mut read, &r.body, &mut cur, id_of) {
                    read.problems.push(format!("{name}: {p}"));
                    break;
                }
                if read.entries.len() == before {
                    read.problems.push(format!(
                        "{name}: pull at offset {cur} answered FOUND with no record"
                    ));
                    break;
                }
            }
            response::PULL_OFFSET_MOVED => {
                // Retention moved the queue's start while it was read.
                if next <= cur {
                    read.problems.push(format!(
                        "{name}: OFFSET_MOVED at offset {cur} to {next}, not forward"
                    ));
                    break;
                }
                read.min = next;
                cur = next;
                continue;
            }
            code => {
                // No message for `cur` although the queue reaches `max`.
                if next <= cur {
                    idle_retries += 1;
                    if idle_retries <= 3 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    read.problems.push(format!(
                        "{name}: no message at offset {cur} below max {max} (code {code}, next {next})"
                    ));
                    break;
                }
            }
        }
        idle_retries = 0;
        if next > cur {
            read.gaps.push((cur, next.min(max).max(cur)));
            if next > max {
                read.problems
                    .push(format!("{name}: next offset {next} past the max {max}"));
            }
        } else if next < cur {
            read.problems.push(format!(
                "{name}: next offset {next} behind the {cur} already read"
            ));
            break;
        }
        cur = next.max(cur);
    }
    Ok(read)
}

/// Takes a FOUND answer's records into `read`, checking each record's own queue offset
/// against the position it was served at (`cur`, moved past each). A record whose offset is
/// ahead of `cur` leaves a gap.
fn take_records(
    read: &mut QueueRead,
    body: &bytes::Bytes,
    cur: &mut i64,
    id_of: &dyn Fn(&[u8]) -> Result<u64, String>,
) -> Result<(), String> {
    let mut at = 0;
    while at < body.len() {
        let (m, size) = match record::decode(&body.slice(at..), true) {
            Ok(Found::Message(m, size)) => (m, size),
            Ok(Found::Blank) => return Err(format!("BLANK record in a pull answer at {at}")),
            Err(e) => {
                return Err(format!(
                    "undecodable record in a pull answer at offset {cur}: {e}"
                ))
            }
        };
        at += size;
        if m.topic != read.topic || m.queue_id != read.queue_id {
            return Err(format!(
                "record of {}/{} (offset {}) served at offset {cur}",
                m.topic, m.queue_id, m.queue_offset
            ));
        }
        if m.queue_offset < *cur {
            return Err(format!(
                "record with queue offset {} served at offset {cur} (out of order)",
                m.queue_offset
            ));
        }
        if m.queue_offset > *cur {
            read.gaps.push((*cur, m.queue_offset));
        }
        read.entries.push((m.queue_offset, id_of(&m.body)));
        *cur = m.queue_offset + 1;
    }
    Ok(())
}
