//! The consume queues the store holds, by topic and queue id, opened on first use.

use super::{MessageStore, StoreConfig, StoreError};
use crate::consume_queue::ConsumeQueue;
use std::collections::HashMap;

impl MessageStore {
    pub(super) fn queue(
        &mut self,
        topic: &str,
        queue_id: i32,
    ) -> Result<&mut ConsumeQueue, StoreError> {
        open_queue(&mut self.queues, &self.config, topic, queue_id)
    }
}

/// The queue of `topic`/`queue_id`, opened (or created) on first use. A function of the
/// fields it needs, so a put can hold it while appending to the commit log.
pub(super) fn open_queue<'q>(
    queues: &'q mut Queues,
    config: &StoreConfig,
    topic: &str,
    queue_id: i32,
) -> Result<&'q mut ConsumeQueue, StoreError> {
    if queues.get(topic, queue_id).is_none() {
        let dir = config
            .root
            .join("consumequeue")
            .join(topic)
            .join(queue_id.to_string());
        let q = ConsumeQueue::open(&dir, config.consume_queue_file_size)?;
        queues.insert(topic.to_owned(), queue_id, q);
    }
    Ok(queues.get_mut(topic, queue_id).expect("just inserted"))
}

/// The consume queues by topic, then queue id: a put finds its queue by `&str`, with no key
/// to allocate (a `(String, i32)` key cost an allocation and a hash of it per put).
#[derive(Default)]
pub(super) struct Queues(HashMap<String, HashMap<i32, ConsumeQueue>>);

impl Queues {
    pub(super) fn get(&self, topic: &str, queue_id: i32) -> Option<&ConsumeQueue> {
        self.0.get(topic)?.get(&queue_id)
    }

    pub(super) fn get_mut(&mut self, topic: &str, queue_id: i32) -> Option<&mut ConsumeQueue> {
        self.0.get_mut(topic)?.get_mut(&queue_id)
    }

    pub(super) fn insert(&mut self, topic: String, queue_id: i32, q: ConsumeQueue) {
        self.0.entry(topic).or_default().insert(queue_id, q);
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &ConsumeQueue> {
        self.0.values().flat_map(HashMap::values)
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut ConsumeQueue> {
        self.0.values_mut().flat_map(HashMap::values_mut)
    }

    /// (topic, queue id, queue) of every queue.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&str, i32, &mut ConsumeQueue)> {
        self.0
            .iter_mut()
            .flat_map(|(t, m)| m.iter_mut().map(move |(id, q)| (t.as_str(), *id, q)))
    }

    /// The queue ids of a topic's queues, sorted.
    pub(super) fn ids(&self, topic: &str) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .0
            .get(topic)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Forgets a topic's queues; how many there were.
    pub(super) fn remove_topic(&mut self, topic: &str) -> usize {
        self.0.remove(topic).map_or(0, |m| m.len())
    }
}
