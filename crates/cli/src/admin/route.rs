//! `rmq route TOPIC` (mqadmin topicRoute): brokers and queues serving a topic.

use super::{print_json, Admin, Failure, Table};
use rmq_model::call::GetRouteInfo;
use std::process::ExitCode;

/// Looks up `topic` and prints its brokers and queues.
pub async fn run(admin: Admin, topic: String) -> Result<ExitCode, Failure> {
    let route = admin.read(&GetRouteInfo::new(topic)).await?;
    if admin.common.json {
        print_json(&serde_json::json!(route));
        return Ok(ExitCode::SUCCESS);
    }
    let mut brokers = Table::new(&["BROKER", "CLUSTER", "ID", "ADDRESS"]);
    for b in &route.broker_datas {
        for (id, addr) in &b.broker_addrs {
            brokers.row(vec![
                b.broker_name.clone(),
                b.cluster.clone(),
                id.to_string(),
                addr.clone(),
            ]);
        }
    }
    let mut queues = Table::new(&["BROKER", "READ", "WRITE", "PERM"]);
    for q in &route.queue_datas {
        queues.row(vec![
            q.broker_name.clone(),
            q.read_queue_nums.to_string(),
            q.write_queue_nums.to_string(),
            perm_text(i64::from(q.perm)),
        ]);
    }
    print!("{brokers}\n{queues}");
    Ok(ExitCode::SUCCESS)
}

/// "RW", "R-", "-W", "--" from permission bits (READ 4, WRITE 2).
pub fn perm_text(perm: i64) -> String {
    format!(
        "{}{} ({perm})",
        if perm & 4 != 0 { 'R' } else { '-' },
        if perm & 2 != 0 { 'W' } else { '-' }
    )
}
