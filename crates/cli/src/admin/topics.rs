//! `rmq topics [--cluster C]` (mqadmin topicList).

use super::{print_json, Admin, Failure, Table};
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use std::process::ExitCode;

/// Lists every topic, or the topics with queues in `cluster`.
pub async fn run(admin: Admin, cluster: Option<String>) -> Result<ExitCode, Failure> {
    let req = match cluster {
        Some(c) => RemotingCommand::request(request::GET_TOPICS_BY_CLUSTER).with_ext("cluster", c),
        None => RemotingCommand::request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
    };
    let resp = admin.read(req).await?;
    let body = super::body_json(&resp.body, "topic list")?;
    let mut topics: Vec<String> = body["topicList"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
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
