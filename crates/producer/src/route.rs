//! TopicPublishInfo (producer spec §9-10): the writable queues of a topic, built from its route,
//! and queue selection (round robin avoiding the last failed broker, or latency-aware).

use rmq_model::route::{QueueData, TopicRouteData, MASTER_ID};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use rmq_model::MessageQueue;

/// What a producer needs of a route: the queues it may write, and each broker's master.
#[derive(Debug)]
pub struct TopicPublishInfo {
    /// Writable queues, by broker name then queue id.
    pub queues: Vec<MessageQueue>,
    /// Broker name -> master ("id 0") address.
    pub masters: BTreeMap<String, String>,
    /// True when the topic has an order configuration (queues as listed there).
    pub order_topic: bool,
    next: AtomicUsize,
}

const WRITE: i64 = 2;

/// The most queues one broker may offer for a topic. The route comes from a NameServer (or
/// whoever answers in its place) and each queue is an entry we allocate, so an absurd count is
/// refused (that broker's queues are skipped, with a warning) instead of trusted. Java topics
/// have 4 to a few hundred queues; 4,096 leaves room.
pub const MAX_QUEUES_PER_BROKER: i64 = 4096;

/// `n` if it is a sane queue count, else `None` (logged).
fn sane_queue_count(topic: &str, broker: &str, n: i64) -> Option<i64> {
    if (0..=MAX_QUEUES_PER_BROKER).contains(&n) {
        Some(n)
    } else {
        tracing::warn!(
            topic,
            broker,
            queues = n,
            max = MAX_QUEUES_PER_BROKER,
            "route names an absurd queue count; skipping that broker's queues"
        );
        None
    }
}

impl TopicPublishInfo {
    /// Builds from a topic's route. With `clamp_queue_nums` (the TBW102 fallback) each broker
    /// offers at most that many queues.
    pub fn from_route(
        topic: &str,
        route: &TopicRouteData,
        clamp_queue_nums: Option<i64>,
    ) -> TopicPublishInfo {
        let masters: BTreeMap<String, String> = route
            .broker_datas
            .iter()
            .filter_map(|b| {
                b.broker_addrs
                    .get(&MASTER_ID)
                    .map(|addr| (b.broker_name.clone(), addr.clone()))
            })
            .collect();
        let mut queues = Vec::new();
        let order_conf = route.order_topic_conf.as_deref().filter(|s| !s.is_empty());
        if let Some(conf) = order_conf {
            // "brokerA:4;brokerB:4"
            for item in conf.split(';') {
                if let Some((name, n)) = item.split_once(':') {
                    let n = n.trim().parse::<i64>().unwrap_or(0);
                    let Some(n) = sane_queue_count(topic, name.trim(), n) else {
                        continue;
                    };
                    for q in 0..n as i32 {
                        queues.push(MessageQueue {
                            topic: topic.to_owned(),
                            broker_name: name.trim().to_owned(),
                            queue_id: q,
                        });
                    }
                }
            }
        } else {
            let mut datas: Vec<&QueueData> = route.queue_datas.iter().collect();
            datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
            for q in datas {
                let name = q.broker_name.as_str();
                if i64::from(q.perm) & WRITE == 0 || !masters.contains_key(name) {
                    continue;
                }
                let Some(mut n) = sane_queue_count(topic, name, i64::from(q.write_queue_nums))
                else {
                    continue;
                };
                if let Some(clamp) = clamp_queue_nums {
                    n = n.min(clamp).min(i64::from(q.read_queue_nums));
                }
                for id in 0..n {
                    queues.push(MessageQueue {
                        topic: topic.to_owned(),
                        broker_name: name.to_owned(),
                        queue_id: id as i32,
                    });
                }
            }
        }
        TopicPublishInfo {
            queues,
            masters,
            order_topic: order_conf.is_some(),
            next: AtomicUsize::new(rand::random::<u16>() as usize),
        }
    }

    /// Whether there is any queue to write.
    pub fn is_usable(&self) -> bool {
        !self.queues.is_empty()
    }

    fn next_index(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Java's default selection: round robin, skipping `last_broker` (the broker of the failed
    /// previous attempt) when another one has a queue.
    pub fn select(&self, last_broker: Option<&str>) -> Option<&MessageQueue> {
        let n = self.queues.len();
        if n == 0 {
            return None;
        }
        if let Some(last) = last_broker {
            for _ in 0..n {
                let q = &self.queues[self.next_index() % n];
                if q.broker_name != last {
                    return Some(q);
                }
            }
        }
        Some(&self.queues[self.next_index() % n])
    }

    /// Selection that avoids brokers (Java's latency table with sendLatencyFaultEnable, and
    /// isolated or draining brokers): a queue on an available broker that is not `last_broker`,
    /// then any available one, then plain round robin (when every broker is avoided, trying one
    /// beats failing outright).
    pub fn select_available(
        &self,
        last_broker: Option<&str>,
        available: &dyn Fn(&str) -> bool,
    ) -> Option<&MessageQueue> {
        let n = self.queues.len();
        if n == 0 {
            return None;
        }
        let start = self.next_index();
        let pick = |ok: &dyn Fn(&MessageQueue) -> bool| {
            (0..n)
                .map(|i| &self.queues[(start + i) % n])
                .find(|q| ok(q))
        };
        pick(&|q| available(&q.broker_name) && Some(q.broker_name.as_str()) != last_broker)
            .or_else(|| pick(&|q| available(&q.broker_name)))
            .or_else(|| self.select(last_broker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(v: serde_json::Value) -> TopicRouteData {
        serde_json::from_value(v).expect("a route")
    }
    use crate::fault::FaultTable;

    #[test]
    fn absurd_queue_counts_are_refused_not_allocated() {
        let route = serde_json::json!({
            "brokerDatas": [
                {"brokerName": "a", "brokerAddrs": {"0": "127.0.0.1:1"}},
                {"brokerName": "b", "brokerAddrs": {"0": "127.0.0.1:2"}}
            ],
            "queueDatas": [
                {"brokerName": "a", "perm": 6, "readQueueNums": 4, "writeQueueNums": 2_000_000_000i64},
                {"brokerName": "b", "perm": 6, "readQueueNums": 4, "writeQueueNums": 4}
            ]
        });
        let info = TopicPublishInfo::from_route("T", &typed(route), None);
        assert_eq!(info.queues.len(), 4, "only b's queues");
        assert!(info.queues.iter().all(|q| q.broker_name == "b"));
        let ordered = serde_json::json!({"orderTopicConf": "a:99999999;b:2", "brokerDatas": []});
        let info = TopicPublishInfo::from_route("T", &typed(ordered), None);
        assert_eq!(info.queues.len(), 2);
        let negative = serde_json::json!({
            "brokerDatas": [{"brokerName": "a", "brokerAddrs": {"0": "127.0.0.1:1"}}],
            "queueDatas": [{"brokerName": "a", "perm": 6, "readQueueNums": 4, "writeQueueNums": -5}]
        });
        assert!(!TopicPublishInfo::from_route("T", &typed(negative), None).is_usable());
    }

    fn route() -> serde_json::Value {
        serde_json::json!({
            "brokerDatas": [
                {"brokerName": "b", "brokerAddrs": {"0": "10.0.0.2:1"}},
                {"brokerName": "a", "brokerAddrs": {"0": "10.0.0.1:1", "1": "10.0.0.11:1"}},
                {"brokerName": "slaveonly", "brokerAddrs": {"1": "10.0.0.3:1"}}
            ],
            "queueDatas": [
                {"brokerName": "b", "perm": 6, "readQueueNums": 8, "writeQueueNums": 8},
                {"brokerName": "a", "perm": 6, "readQueueNums": 2, "writeQueueNums": 2},
                {"brokerName": "ro", "perm": 4, "readQueueNums": 4, "writeQueueNums": 4},
                {"brokerName": "slaveonly", "perm": 6, "readQueueNums": 4, "writeQueueNums": 4}
            ]
        })
    }

    #[test]
    fn writable_master_queues_sorted_and_clamped() {
        let info = TopicPublishInfo::from_route("T", &typed(route()), None);
        let names: Vec<_> = info
            .queues
            .iter()
            .map(|q| (q.broker_name.as_str(), q.queue_id))
            .collect();
        assert_eq!(names.len(), 10);
        assert_eq!(names[0], ("a", 0));
        assert_eq!(names[2], ("b", 0));
        let tbw = TopicPublishInfo::from_route("T", &typed(route()), Some(4));
        assert_eq!(tbw.queues.len(), 2 + 4);
        let ordered = TopicPublishInfo::from_route(
            "T",
            &typed(
                serde_json::json!({"orderTopicConf": "a:2;b:1", "brokerDatas": [], "queueDatas": []}),
            ),
            None,
        );
        assert!(ordered.order_topic);
        assert_eq!(ordered.queues.len(), 3);
    }

    #[test]
    fn selection_avoids_the_last_broker_and_faulty_ones() {
        let info = TopicPublishInfo::from_route("T", &typed(route()), None);
        for _ in 0..20 {
            assert_eq!(info.select(Some("a")).unwrap().broker_name, "b");
        }
        let faults = FaultTable::default();
        faults.update("b", std::time::Duration::ZERO, true);
        for _ in 0..20 {
            assert_eq!(
                info.select_available(None, &|b| faults.is_available(b))
                    .unwrap()
                    .broker_name,
                "a"
            );
        }
    }
}
