//! `rmq clusters` (mqadmin clusterList): clusters, broker groups, members, addresses, and each
//! broker's version where the broker answers GET_BROKER_RUNTIME_INFO.

use super::{print_json, Admin, Failure, Table};
use rmq_model::call::{GetBrokerRuntimeInfo, GetClusterInfo};
use rmq_model::{CallError, Caller};
use rmq_protocol::codes::response;
use rmq_remoting::RemotingError;
use std::process::ExitCode;
use std::time::Duration;

/// How long a broker gets to report its version before the table shows "- (timeout)".
const VERSION_TIMEOUT: Duration = Duration::from_millis(1000);

/// Why a version is missing when the broker refused the request (ACL).
const NO_PERMISSION: &str = "no permission";

/// A broker group member: (cluster, broker name, broker id, address).
pub type Member = (String, String, String, String);

/// A broker's GET_BROKER_RUNTIME_INFO table, or why it gave none.
pub type RuntimeInfo = Result<std::collections::HashMap<String, String>, String>;

/// Every member the NameServers know, sorted, each with its runtime info (the dashboard's
/// overview; `rmq clusters` shows the version from it).
pub async fn members_with_runtime(admin: &Admin) -> Result<Vec<(Member, RuntimeInfo)>, Failure> {
    let (_, members, infos) = members_and_runtime(admin).await?;
    Ok(members.into_iter().zip(infos).collect())
}

/// The cluster info, (cluster, broker name, id, address) of every member, sorted, and each
/// member's version.
async fn members_and_runtime(
    admin: &Admin,
) -> Result<(rmq_model::route::ClusterInfo, Vec<Member>, Vec<RuntimeInfo>), Failure> {
    let info = admin.read(&GetClusterInfo).await?;
    let mut members: Vec<Member> = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        for name in names {
            let Some(group) = info.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &group.broker_addrs {
                members.push((cluster.clone(), name.clone(), id.to_string(), addr.clone()));
            }
        }
    }
    members.sort();
    let infos = runtime_infos(admin, &members).await;
    Ok((info, members, infos))
}

fn members_json(
    info: &rmq_model::route::ClusterInfo,
    members: &[Member],
    versions: &[Result<String, String>],
) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = members
        .iter()
        .zip(versions)
        .map(|((c, n, id, a), v)| {
            let (version, why) = match v {
                Ok(v) => (Some(v.as_str()), None),
                Err(why) => (None, Some(why.as_str())),
            };
            serde_json::json!({"cluster": c, "brokerName": n, "brokerId": id, "address": a, "version": version, "versionError": why})
        })
        .collect();
    serde_json::json!({ "brokers": rows, "clusterInfo": info })
}

/// Prints the cluster table.
pub async fn run(admin: Admin) -> Result<ExitCode, Failure> {
    let (info, members, infos) = members_and_runtime(&admin).await?;
    let versions: Vec<Result<String, String>> = infos
        .into_iter()
        .map(|i| {
            i.and_then(|t| {
                t.get("brokerVersionDesc")
                    .cloned()
                    .ok_or_else(|| "no version in the answer".to_owned())
            })
        })
        .collect();
    if admin.common.json {
        print_json(&members_json(&info, &members, &versions));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["CLUSTER", "BROKER", "ID", "ADDRESS", "VERSION"]);
    let refused = versions
        .iter()
        .any(|v| matches!(v, Err(why) if why == NO_PERMISSION));
    for ((c, n, id, a), v) in members.into_iter().zip(versions) {
        t.row(vec![
            c,
            n,
            id,
            a,
            v.unwrap_or_else(|why| format!("- ({why})")),
        ]);
    }
    print!("{t}");
    if refused {
        println!(
            "(no permission: the brokers use ACL; sign the requests with --acl or --acl-file)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks every broker for its runtime info concurrently, each bounded by [`VERSION_TIMEOUT`];
/// a missing answer comes with why: "no permission", "timeout", "refused", "error N".
async fn runtime_infos(admin: &Admin, members: &[Member]) -> Vec<RuntimeInfo> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (_, _, _, addr)) in members.iter().enumerate() {
        let (client, addr) = (admin.client.clone(), addr.clone());
        set.spawn(async move {
            let asked = client
                .call(&addr, &GetBrokerRuntimeInfo, VERSION_TIMEOUT)
                .await;
            let v = match asked {
                Ok(kv) => Ok(kv.table.into_iter().collect()),
                Err(e) => Err(why_no_version(&e)),
            };
            (i, v)
        });
    }
    let mut out = vec![Err("not asked".to_owned()); members.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, v)) = r {
            out[i] = v;
        }
    }
    out
}

/// The VERSION column's reason for a broker that gave none.
fn why_no_version(e: &CallError) -> String {
    match e {
        CallError::Refused {
            code: response::NO_PERMISSION,
            ..
        } => NO_PERMISSION.to_owned(),
        CallError::Refused { code, .. } => format!("error {code}"),
        CallError::Remoting(RemotingError::Timeout { .. }) => "timeout".to_owned(),
        CallError::Remoting(RemotingError::Connect { .. }) => "refused".to_owned(),
        other => other.to_string(),
    }
}
