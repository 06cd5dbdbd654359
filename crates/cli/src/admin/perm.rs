//! `rmq wipe-write-perm BROKER`, `rmq add-write-perm BROKER`, `rmq delete-topic TOPIC`: changes
//! sent to every NameServer in the list (each holds its own route tables).

use super::{report_writes, Admin, Failure};
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use std::process::ExitCode;

/// Wipes (`wipe`) or restores the write permission of a broker's queues.
pub async fn write_perm(admin: Admin, broker: String, wipe: bool) -> Result<ExitCode, Failure> {
    let code = if wipe {
        request::WIPE_WRITE_PERM_OF_BROKER
    } else {
        request::ADD_WRITE_PERM_OF_BROKER
    };
    let key = if wipe {
        "wipeTopicCount"
    } else {
        "addTopicCount"
    };
    let results = admin
        .write_all(RemotingCommand::request(code).with_ext("brokerName", broker))
        .await;
    Ok(report_writes(&admin.common, results, |r| {
        r.ext(key).map(|n| format!("{key}={n}"))
    }))
}

/// Deletes a topic's routes (from one cluster's brokers with `cluster`).
pub async fn delete_topic(
    admin: Admin,
    topic: String,
    cluster: Option<String>,
) -> Result<ExitCode, Failure> {
    let mut req =
        RemotingCommand::request(request::DELETE_TOPIC_IN_NAMESRV).with_ext("topic", topic);
    if let Some(c) = cluster {
        req = req.with_ext("clusterName", c);
    }
    let results = admin.write_all(req).await;
    Ok(report_writes(&admin.common, results, |_| None))
}
