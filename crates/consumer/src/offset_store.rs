//! Offsets: where a queue starts (the group's committed offset, else `consume_from` as Java
//! computes it, spec §4.5) and where commits go (UPDATE_CONSUMER_OFFSET to the queue's master,
//! or the local file in BROADCASTING), every `persist_interval`, at once on request, and at
//! shutdown. Each owned queue's offset to commit is a `CommitOffset` (`commit_offset`).

use crate::broker_requests;
use crate::config::ConsumeFrom;
use crate::state::{ConsumerState, RPC_TIMEOUT};
use crate::MessageQueue;
use rmq_protocol::codes::response;

impl ConsumerState {
    /// The offset to start a queue at (spec §4.5).
    pub(crate) async fn initial_offset(&self, mq: &MessageQueue) -> Option<i64> {
        let addr = self.master_of(&mq.broker_name)?;
        if let Some(local) = &self.broadcast_offsets {
            if let Some(o) = local.get(mq) {
                return Some(o);
            }
            return self.offset_without_commit(&addr, mq).await;
        }
        let q = broker_requests::query_consumer_offset(&self.config.group, mq);
        let r = self.client.invoke_sync(&addr, q, RPC_TIMEOUT).await.ok()?;
        if r.code == 0 {
            return r.ext("offset").and_then(|o| o.parse().ok());
        }
        if r.code != response::QUERY_NOT_FOUND {
            return None;
        }
        self.offset_without_commit(&addr, mq).await
    }

    /// Where a queue starts when the group has no offset for it (spec §4.5).
    async fn offset_without_commit(&self, addr: &str, mq: &MessageQueue) -> Option<i64> {
        let retry = mq.topic.starts_with("%RETRY%");
        let req = match self.config.consume_from {
            ConsumeFrom::FirstOffset => return Some(0),
            ConsumeFrom::LastOffset if retry => return Some(0),
            ConsumeFrom::LastOffset => broker_requests::get_max_offset(mq),
            ConsumeFrom::Timestamp(_) if retry => broker_requests::get_max_offset(mq),
            ConsumeFrom::Timestamp(t) => broker_requests::search_offset_by_timestamp(mq, t),
        };
        let r = self.client.invoke_sync(addr, req, RPC_TIMEOUT).await.ok()?;
        (r.code == 0)
            .then(|| r.ext("offset").and_then(|o| o.parse().ok()))
            .flatten()
    }

    /// Commits a queue's offset: UPDATE_CONSUMER_OFFSET, oneway, to the queue's master, or
    /// BROADCASTING's local table (written by [`ConsumerState::persist_local`]).
    pub(crate) async fn commit(&self, mq: &MessageQueue, offset: i64) {
        if let Some(local) = &self.broadcast_offsets {
            local.set(mq, offset);
            return;
        }
        let Some(addr) = self.master_of(&mq.broker_name) else {
            return;
        };
        let req = broker_requests::update_consumer_offset(&self.config.group, mq, offset);
        if let Err(e) = self.client.invoke_oneway(&addr, req, RPC_TIMEOUT).await {
            tracing::debug!(error = %e, "offset commit not sent");
        }
    }

    /// Commits every owned queue's known offset now (the persist task, lite pull's `commit`).
    pub(crate) async fn persist_all(&self) {
        for (mq, off) in self.commit_offsets() {
            self.commit(&mq, off).await;
        }
        self.persist_local().await;
    }

    /// BROADCASTING: writes the offsets file, on the blocking pool.
    pub(crate) async fn persist_local(&self) {
        if let Some(local) = self.broadcast_offsets.clone() {
            match tokio::task::spawn_blocking(move || local.persist()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "broadcasting offsets not written"),
                Err(e) => tracing::error!(error = %e, "broadcasting offsets not written"),
                Ok(Ok(())) => {}
            }
        }
    }
}
