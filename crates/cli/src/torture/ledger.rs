//! What the torture run sent and what it was told: every message has a counter, carried in its
//! body with the run's id, so any copy read back names the send it came from. Each send is
//! recorded before it leaves (so anything stored is known to have been sent) and each
//! acknowledgement with its queue and offset, as the SendResult gave them. The send-back
//! consumer's side is here too: what its listener processed and which give-backs the broker
//! acknowledged.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The ledger as the senders, the listener and the checks share it.
pub type Shared = Arc<Mutex<Ledger>>;

/// Bytes of every body (the 128-byte sends of the report).
pub const BODY_LEN: usize = 128;

/// The body of message `counter` of run `run`: `TT <run> <counter> ` and a filler that
/// depends on the counter, so a damaged or mixed-up body does not parse.
pub fn body(run: &str, counter: u64) -> Vec<u8> {
    let mut b = format!("TT {run} {counter:012} ").into_bytes();
    let head = b.len();
    b.extend((head..BODY_LEN).map(|i| filler(counter, i)));
    b
}

fn filler(counter: u64, i: usize) -> u8 {
    b'a' + ((counter + i as u64) % 26) as u8
}

/// The counter of a body of run `run`, or why the body is not one of ours.
pub fn parse_body(run: &str, body: &[u8]) -> Result<u64, String> {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(48)]).into_owned();
    let text = std::str::from_utf8(body).map_err(|_| format!("not UTF-8: {:?}", shown()))?;
    let mut parts = text.splitn(4, ' ');
    let (Some("TT"), Some(r), Some(n), Some(_)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not a torture body: {:?}", shown()));
    };
    if r != run {
        return Err(format!("body of another run ({r}): {:?}", shown()));
    }
    let counter: u64 = n
        .parse()
        .map_err(|_| format!("bad counter in {:?}", shown()))?;
    if body != self::body(run, counter).as_slice() {
        return Err(format!("damaged body of message {counter}: {:?}", shown()));
    }
    Ok(counter)
}

/// Which sender a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The flooded queue (async, many in flight).
    Hot,
    /// A nearly idle queue: sync, async and bursts of async sends.
    Cold,
    /// A batch (SEND_BATCH_MESSAGE).
    Batch,
    /// A delayed send (level 1 or 2): stored in SCHEDULE_TOPIC_XXXX, delivered later.
    Delayed,
    /// For the send-back consumer.
    Retry,
}

impl Kind {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hot => "hot",
            Kind::Cold => "cold",
            Kind::Batch => "batch",
            Kind::Delayed => "delayed",
            Kind::Retry => "retry",
        }
    }
}

/// One send, as attempted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The topic it was sent to (a delayed message's real topic).
    pub topic: &'static str,
    /// The sender.
    pub kind: Kind,
    /// Delay level (0: none).
    pub delay_level: u8,
    /// The acknowledgement, once one counts.
    pub ack: Option<Ack>,
}

/// An acknowledgement: where the broker said it stored the message.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// The queue id of the SendResult (a delayed message's real queue).
    pub queue_id: i32,
    /// The queue offset of the SendResult (a delayed message's offset in its
    /// SCHEDULE_TOPIC_XXXX queue; a batch message's: the batch's first plus its index).
    pub queue_offset: i64,
    /// When the answer came.
    pub at: Instant,
    /// The cycle it was sent in.
    pub cycle: u32,
}

/// A give-back (CONSUMER_SEND_MSG_BACK) the broker answered with success.
#[derive(Debug, Clone, Copy)]
pub struct GiveBack {
    /// When the answer came.
    pub at: Instant,
    /// The delay level the broker applies (3 + reconsume times).
    pub level: u8,
}

/// Everything the run knows it did.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The run's id in every body.
    pub run: String,
    /// Every send, by counter.
    pub sent: Vec<Sent>,
    /// Sends answered with an error or not at all.
    pub failed: u64,
    /// Answers with a status that does not count as acknowledged (SYNC_FLUSH, not SEND_OK).
    pub not_ok: u64,
    /// Give-backs the broker acknowledged, by counter (the first).
    pub gave_back: HashMap<u64, GiveBack>,
    /// The listener's view: UNIQ_KEY -> (counter, reconsume times), for the give-back hook.
    pub uniq: HashMap<String, (u64, i32)>,
    /// Messages the listener failed once (RECONSUME_LATER), by counter.
    pub failed_once: HashSet<u64>,
    /// Queue offsets the listener returned from, by (topic, queue id) as pulled.
    pub processed: HashMap<(String, i32), BTreeSet<i64>>,
}

impl Ledger {
    /// An empty ledger for run `run`.
    pub fn new(run: String) -> Ledger {
        Ledger {
            run,
            ..Ledger::default()
        }
    }

    /// Records `n` sends about to leave; their counters are `first..first + n`.
    pub fn attempt(&mut self, topic: &'static str, kind: Kind, delay_level: u8, n: usize) -> u64 {
        let first = self.sent.len() as u64;
        self.sent.extend((0..n).map(|_| Sent {
            topic,
            kind,
            delay_level,
            ack: None,
        }));
        first
    }

    /// Records the acknowledgement of `n` messages from `first` (a batch: consecutive
    /// offsets from `queue_offset`).
    pub fn ack(&mut self, first: u64, n: usize, queue_id: i32, queue_offset: i64, cycle: u32) {
        let at = Instant::now();
        for i in 0..n {
            if let Some(s) = self.sent.get_mut(first as usize + i) {
                s.ack = Some(Ack {
                    queue_id,
                    queue_offset: queue_offset + i as i64,
                    at,
                    cycle,
                });
            }
        }
    }

    /// Messages acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.sent.iter().filter(|s| s.ack.is_some()).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_refuse_others() {
        let b = body("s1a", 42);
        assert_eq!(b.len(), BODY_LEN);
        assert_eq!(parse_body("s1a", &b), Ok(42));
        assert!(parse_body("s2a", &b).unwrap_err().contains("another run"));
        let mut damaged = b.clone();
        damaged[100] ^= 1;
        assert!(parse_body("s1a", &damaged).unwrap_err().contains("damaged"));
        assert!(parse_body("s1a", b"hello").is_err());
        assert!(parse_body("s1a", &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn batches_take_consecutive_offsets() {
        let mut l = Ledger::new("r".into());
        let first = l.attempt("T", Kind::Batch, 0, 3);
        l.ack(first, 3, 2, 10, 1);
        let offsets: Vec<_> = l.sent.iter().map(|s| s.ack.unwrap().queue_offset).collect();
        assert_eq!(offsets, [10, 11, 12]);
        assert_eq!(l.acknowledged(), 3);
    }
}
