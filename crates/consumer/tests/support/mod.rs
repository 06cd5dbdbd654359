//! What the consumer's integration tests share: our NameServer and broker on 127.0.0.1 port 0
//! (every delay level one second, so retries come back quickly), a producer's sends, and a
//! consumer configuration that rebalances and commits often.
#![allow(dead_code)]

use rmq_consumer::{ConsumeFrom, ConsumerConfig};
use rmq_producer::message::Message;
use rmq_producer::{Producer, ProducerConfig};
use std::time::Duration;

/// Our NameServer and broker, every delay level one second (retries come back quickly).
pub struct Cluster {
    /// Both servers.
    pub sa: rmq_testkit::Standalone,
}

impl Cluster {
    /// Starts both.
    pub async fn start() -> Cluster {
        let sa =
            rmq_testkit::Standalone::start(|c| c.message_delay_level = ["1s"; 18].join(" ")).await;
        Cluster { sa }
    }

    /// The NameServer's address.
    pub fn ns(&self) -> String {
        self.sa.ns_addr()
    }

    /// Creates `topic` with `queues` queues.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        self.sa.create_topic(topic, queues).await;
    }

    /// Sends each body to `topic` with tag TagA, one at a time.
    pub async fn send(&self, topic: &str, bodies: impl Iterator<Item = String>) {
        let p = Producer::start(ProducerConfig::new("PG_push", &[&self.ns()]))
            .await
            .unwrap();
        for b in bodies {
            p.send(Message::new(topic, b.into_bytes()).with_tags("TagA"))
                .await
                .unwrap();
        }
        p.shutdown().await;
    }

    /// Waits (10 s at most) until queue `queue` of `topic` holds `n` messages a pull can see.
    pub async fn wait_stored(&self, topic: &str, queue: i32, n: u64) {
        let state = self.sa.broker.state().clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let t = topic.to_owned();
            let max = state
                .store
                .run(move |st| st.max_offset(&t, queue))
                .await
                .unwrap();
            if max >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{topic}/{queue}: {max} of {n} stored"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (`within` at most) until `group`'s committed offset of queue `queue` of `topic`
    /// on the broker is `offset`.
    pub async fn wait_committed(
        &self,
        group: &str,
        topic: &str,
        queue: i32,
        offset: i64,
        within: Duration,
    ) {
        let state = self.sa.broker.state().clone();
        let deadline = tokio::time::Instant::now() + within;
        while state.offsets.query(group, topic, queue) != Some(offset) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{group} {topic}/{queue}: committed {:?}, not {offset}",
                state.offsets.query(group, topic, queue)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A member of `group` named `name` (its client id's instance), from the first offset,
/// rebalancing every 500 ms and committing every 200 ms.
pub fn config(c: &Cluster, group: &str, name: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(group, &[&c.ns()]);
    cfg.consume_from = ConsumeFrom::FirstOffset;
    cfg.instance_name = Some(name.to_owned());
    cfg.rebalance_interval = Duration::from_millis(500);
    cfg.persist_interval = Duration::from_millis(200);
    cfg
}
