//! Delay levels (spec §1.17): messages with `DELAY` wait in SCHEDULE_TOPIC_XXXX queue
//! `level - 1` and are re-put into their REAL_TOPIC / REAL_QID when due. The position of each
//! level lives in `delayOffset.json`, so deliveries survive restarts (a crash may deliver a
//! message twice, never lose it: the offset moves on only after the re-put is stored).

use crate::send::put_records;
use crate::BrokerState;
use rmq_store::record::{self, Found, Record};
use rmq_store::store::SCHEDULE_TOPIC;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often due messages are looked for (Java retries a level every 100 ms).
const TICK: Duration = Duration::from_millis(100);
/// Messages delivered per level per round at most.
const BATCH: usize = 64;

/// A record due now (or `None`: entries to skip), and the level offset to store once it is
/// re-put.
struct Due {
    level: i32,
    next_offset: u64,
    record: Option<Record>,
}

/// The delivery loop; ends at the stop signal.
pub fn start(s: Arc<BrokerState>, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            // Deliver until nothing is due (a backlog drains without waiting for ticks).
            loop {
                let due = match find_due(&s).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "delayed delivery scan failed");
                        break;
                    }
                };
                if due.is_empty() {
                    break;
                }
                let full = due.len() >= BATCH;
                let mut failed = false;
                for d in due {
                    if let Some(r) = d.record {
                        if let Err(e) = put_records(&s, vec![r]).await {
                            tracing::warn!(error = %e, level = d.level, "delayed delivery failed; retried");
                            failed = true;
                            break;
                        }
                    }
                    s.delay_offsets.set(d.level, d.next_offset as i64);
                }
                if failed {
                    break;
                }
                if !full {
                    break;
                }
            }
        }
    })
}

/// Reads every level's queue from its offset and returns the records due now, in order,
/// in one store job (one round trip when nothing is due).
async fn find_due(s: &Arc<BrokerState>) -> Result<Vec<Due>, String> {
    let levels: Vec<(i32, u64)> = (1..=s.delay_levels_ms.len() as i32)
        .map(|l| (l, s.delay_offsets.get(l).max(0) as u64))
        .collect();
    let delays = s.delay_levels_ms.clone();
    let store_host = s.store_host;
    s.store
        .run(move |st| {
            let now = crate::now_ms();
            let mut due = Vec::new();
            for (level, from) in levels {
                let q = level - 1;
                if st.max_offset(SCHEDULE_TOPIC, q) <= from {
                    continue;
                }
                let got = st
                    .get_message(SCHEDULE_TOPIC, q, from, BATCH, usize::MAX, None)
                    .map_err(|e| e.to_string())?;
                if got.records.is_empty() {
                    // Entries retention removed (or below the queue's min): move past them.
                    let next = got.next_begin_offset;
                    if next > from {
                        due.push(Due {
                            level,
                            next_offset: next,
                            record: None,
                        });
                    }
                    continue;
                }
                let delay = delays[(level as usize - 1).min(delays.len() - 1)];
                for (qo, raw) in got.records {
                    let r = match record::decode(&raw, false) {
                        Ok(Found::Message(r, _)) => r,
                        // Not a message (cannot happen for a queue entry): skip it.
                        _ => {
                            due.push(Due {
                                level,
                                next_offset: qo + 1,
                                record: None,
                            });
                            continue;
                        }
                    };
                    if r.store_timestamp + delay > now {
                        break;
                    }
                    let record = delivered(*r, store_host);
                    if record.is_none() {
                        tracing::warn!(
                            level,
                            offset = qo,
                            "delayed message without REAL_TOPIC/REAL_QID skipped"
                        );
                    }
                    due.push(Due {
                        level,
                        next_offset: qo + 1,
                        record,
                    });
                }
            }
            Ok(due)
        })
        .await
        .map_err(|e| e.to_string())?
}

/// The record re-put at delivery (`messageTimeUp`): same body, flags, times and hosts, in
/// REAL_TOPIC / REAL_QID; the properties string stays as stored (Java's quirk: DELAY,
/// REAL_TOPIC and REAL_QID remain visible to consumers).
fn delivered(r: Record, store_host: std::net::SocketAddr) -> Option<Record> {
    let topic = record::property(&r.properties, "REAL_TOPIC")?.to_owned();
    let queue_id = record::property(&r.properties, "REAL_QID")?
        .trim()
        .parse()
        .ok()?;
    Some(Record {
        topic,
        queue_id,
        queue_offset: 0,
        physical_offset: 0,
        store_timestamp: crate::now_ms(),
        store_host,
        ..r
    })
}
