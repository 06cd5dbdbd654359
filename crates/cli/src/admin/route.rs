//! `rmq route TOPIC` (mqadmin topicRoute): brokers and queues serving a topic.

use super::{print_json, Admin, Failure, Table};
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use std::process::ExitCode;

/// Looks up `topic` and prints its brokers and queues.
pub async fn run(admin: Admin, topic: String) -> Result<ExitCode, Failure> {
    let req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", topic);
    let resp = admin.read(req).await?;
    let route = super::body_json(&resp.body, "route body")?;
    if admin.common.json {
        print_json(&route);
        return Ok(ExitCode::SUCCESS);
    }
    let mut brokers = Table::new(&["BROKER", "CLUSTER", "ID", "ADDRESS"]);
    for b in route["brokerDatas"].as_array().into_iter().flatten() {
        for (id, addr) in b["brokerAddrs"].as_object().into_iter().flatten() {
            brokers.row(vec![
                text(&b["brokerName"]),
                text(&b["cluster"]),
                id.clone(),
                text(addr),
            ]);
        }
    }
    let mut queues = Table::new(&["BROKER", "READ", "WRITE", "PERM"]);
    for q in route["queueDatas"].as_array().into_iter().flatten() {
        queues.row(vec![
            text(&q["brokerName"]),
            text(&q["readQueueNums"]),
            text(&q["writeQueueNums"]),
            perm_text(q["perm"].as_i64().unwrap_or(0)),
        ]);
    }
    print!("{brokers}\n{queues}");
    Ok(ExitCode::SUCCESS)
}

/// A JSON scalar as plain text.
pub fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// "RW", "R-", "-W", "--" from permission bits (READ 4, WRITE 2).
pub fn perm_text(perm: i64) -> String {
    format!(
        "{}{} ({perm})",
        if perm & 4 != 0 { 'R' } else { '-' },
        if perm & 2 != 0 { 'W' } else { '-' }
    )
}
