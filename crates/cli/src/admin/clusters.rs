//! `rmq clusters` (mqadmin clusterList): clusters, broker groups, members, addresses, and each
//! broker's version where the broker answers GET_BROKER_RUNTIME_INFO.

use super::route::text;
use super::{parse_lenient_json, print_json, Admin, Failure, Table};
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use std::process::ExitCode;
use std::time::Duration;

/// How long a broker gets to report its version before the table shows "-".
const VERSION_TIMEOUT: Duration = Duration::from_millis(1000);

/// Prints the cluster table.
pub async fn run(admin: Admin) -> Result<ExitCode, Failure> {
    let resp = admin
        .read(RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO))
        .await?;
    let info = super::body_json(&resp.body, "cluster info")?;
    // (cluster, broker name, id, address)
    let mut members: Vec<(String, String, String, String)> = Vec::new();
    for (cluster, names) in info["clusterAddrTable"].as_object().into_iter().flatten() {
        for name in names.as_array().into_iter().flatten() {
            let name = text(name);
            let addrs = &info["brokerAddrTable"][&name]["brokerAddrs"];
            for (id, addr) in addrs.as_object().into_iter().flatten() {
                members.push((cluster.clone(), name.clone(), id.clone(), text(addr)));
            }
        }
    }
    members.sort();
    let versions = futures_versions(&admin, &members).await;
    if admin.common.json {
        let rows: Vec<serde_json::Value> = members
            .iter()
            .zip(&versions)
            .map(|((c, n, id, a), v)| {
                serde_json::json!({"cluster": c, "brokerName": n, "brokerId": id, "address": a, "version": v})
            })
            .collect();
        print_json(&serde_json::json!({ "brokers": rows, "clusterInfo": info }));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["CLUSTER", "BROKER", "ID", "ADDRESS", "VERSION"]);
    for ((c, n, id, a), v) in members.into_iter().zip(versions) {
        t.row(vec![c, n, id, a, v.unwrap_or_else(|| "-".into())]);
    }
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// Asks every broker for its version concurrently, each bounded by [`VERSION_TIMEOUT`].
async fn futures_versions(
    admin: &Admin,
    members: &[(String, String, String, String)],
) -> Vec<Option<String>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (_, _, _, addr)) in members.iter().enumerate() {
        let fut = admin.client.invoke_async(
            addr,
            RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO),
            VERSION_TIMEOUT,
        );
        set.spawn(async move {
            let v = fut.await.ok().filter(|r| r.code == 0).and_then(|r| {
                let kv = parse_lenient_json(&r.body).ok()?;
                kv["table"]["brokerVersionDesc"].as_str().map(str::to_owned)
            });
            (i, v)
        });
    }
    let mut out = vec![None; members.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, v)) = r {
            out[i] = v;
        }
    }
    out
}
