//! `rmq wipe-write-perm BROKER`, `rmq add-write-perm BROKER`, `rmq delete-topic TOPIC`: changes
//! sent to every NameServer in the list (each holds its own route tables).

use super::{report_writes, Admin, Failure};
use rmq_model::call::{ChangeWritePerm, DeleteTopicInNamesrv};
use std::process::ExitCode;

/// Wipes (`wipe`) or restores the write permission of a broker's queues.
pub async fn write_perm(admin: Admin, broker: String, wipe: bool) -> Result<ExitCode, Failure> {
    let key = if wipe {
        "wipeTopicCount"
    } else {
        "addTopicCount"
    };
    let req = ChangeWritePerm {
        broker_name: broker,
        wipe,
    };
    let results = admin.write_all(&req).await;
    Ok(report_writes(&admin.common, results, |n| {
        Some(format!("{key}={n}"))
    }))
}

/// Deletes a topic's routes (from one cluster's brokers with `cluster`).
pub async fn delete_topic(
    admin: Admin,
    topic: String,
    cluster: Option<String>,
) -> Result<ExitCode, Failure> {
    let results = admin
        .write_all(&DeleteTopicInNamesrv { topic, cluster })
        .await;
    Ok(report_writes(&admin.common, results, |_| None))
}
