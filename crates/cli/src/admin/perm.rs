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

/// Deletes a topic as mqadmin deleteTopic does: first on the brokers (DELETE_TOPIC_IN_BROKER to
/// every master of `cluster`, or of the brokers serving the topic: its config, offsets and
/// consume queues), then its routes on every NameServer. A broker that cannot be reached is
/// reported and the NameServers are still told.
pub async fn delete_topic(
    admin: Admin,
    topic: String,
    cluster: Option<String>,
) -> Result<ExitCode, Failure> {
    let masters = match &cluster {
        Some(c) => admin.cluster_masters(c).await.unwrap_or_default(),
        None => admin.serving_masters(&topic).await.unwrap_or_default(),
    };
    let mut worst = super::exit::OK;
    for (name, addr) in masters {
        let delete = rmq_model::admin_call::DeleteTopicInBroker {
            topic: topic.clone(),
        };
        match admin.broker(&addr, &delete).await {
            Ok(_) if admin.common.json => {
                super::print_json(&serde_json::json!({"broker": name, "address": addr, "ok": true}))
            }
            Ok(_) => println!("broker {name} ({addr}): deleted"),
            // A server that does not know the request (not a broker of ours or Java's): say
            // so, and go on to the NameServers.
            Err(f) if f.message.contains("code 3 ") => {
                eprintln!(
                    "warning: broker {name} ({addr}) does not delete topics: {}",
                    f.message
                )
            }
            Err(f) => {
                eprintln!("error: {}", f.message);
                worst = worst.max(f.exit);
            }
        }
    }
    let results = admin
        .write_all(&DeleteTopicInNamesrv { topic, cluster })
        .await;
    let code = report_writes(&admin.common, results, |_| None);
    Ok(if worst == super::exit::OK {
        code
    } else {
        ExitCode::from(worst)
    })
}
