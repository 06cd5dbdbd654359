//! The topics the run uses, the send-back group, and the queues a check reads: one flooded
//! queue, nearly idle ones (the report's COLD), a four-queue topic for batches and delays, the
//! send-back consumer's topic, its retry topic and the schedule queues of the levels used.

use rmq_model::admin_call::CreateTopic;
use rmq_model::Call;
use rmq_remoting::RemotingClient;
use std::time::Duration;

/// The flooded topic (one queue).
pub const HOT: &str = "TortureHot";
/// The nearly idle topics (one queue each).
pub const COLD: [&str; 3] = ["TortureCold0", "TortureCold1", "TortureCold2"];
/// Batches and some delayed sends (four queues).
pub const MIX: &str = "TortureMix";
/// What the send-back consumer consumes (two queues).
pub const RETRY_SOURCE: &str = "TortureRetry";
/// The send-back consumer's group.
pub const GROUP: &str = "TortureGroup";
/// The group's retry topic (`%RETRY%` + group; one queue).
pub const RETRY_TOPIC: &str = "%RETRY%TortureGroup";
/// Where delayed messages and give-backs wait (queue = level - 1).
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// The broker's default `messageDelayLevel`, in ms (level 1 = 1 s, 2 = 5 s, 3 = 10 s, ...).
pub const DELAY_LEVELS_MS: [u64; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

/// The topics created before the first send, with their queue counts.
pub fn created() -> Vec<(&'static str, i32)> {
    let mut t = vec![(HOT, 1), (MIX, 4), (RETRY_SOURCE, 2)];
    t.extend(COLD.iter().map(|c| (*c, 1)));
    t
}

/// Every queue a check reads, (topic, queue id): the created topics', the retry topic's and
/// the schedule queues of levels 1-4 (delays at 1 and 2, give-backs at 3 + reconsume times).
pub fn queues() -> Vec<(&'static str, i32)> {
    let mut q: Vec<(&'static str, i32)> = created()
        .into_iter()
        .flat_map(|(t, n)| (0..n).map(move |i| (t, i)))
        .collect();
    q.push((RETRY_TOPIC, 0));
    q.extend((0..4).map(|i| (SCHEDULE_TOPIC, i)));
    q
}

/// UPDATE_AND_CREATE_TOPIC for every created topic.
pub async fn create(client: &RemotingClient, broker: &str) -> Result<(), String> {
    for (topic, queues) in created() {
        let cmd = CreateTopic::new(topic, queues, queues, 6).command();
        let r = client
            .invoke_sync(broker, cmd, Duration::from_secs(10))
            .await
            .map_err(|e| format!("creating {topic}: {e}"))?;
        if r.code != 0 {
            return Err(format!(
                "creating {topic}: code {} {:?}",
                r.code,
                r.remark_str().unwrap_or("")
            ));
        }
    }
    Ok(())
}
