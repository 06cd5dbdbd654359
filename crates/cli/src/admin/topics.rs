//! `rmq topics [--cluster C]` (mqadmin topicList).

use super::{print_json, Admin, Failure, Table};
use rmq_model::call::{GetAllTopics, GetTopicsByCluster};
use std::process::ExitCode;

/// Lists every topic, or the topics with queues in `cluster`.
pub async fn run(admin: Admin, cluster: Option<String>) -> Result<ExitCode, Failure> {
    let list = match cluster {
        Some(cluster) => admin.read(&GetTopicsByCluster { cluster }).await?,
        None => admin.read(&GetAllTopics).await?,
    };
    let mut topics = list.topic_list;
    topics.sort();
    if admin.common.json {
        print_json(&serde_json::json!({ "topicList": topics }));
    } else {
        let mut t = Table::new(&["TOPIC"]);
        for topic in topics {
            t.row(vec![topic]);
        }
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}
