//! `rmq kv get|put|delete|list` (mqadmin updateKvConfig / deleteKvConfig, and the reads mqadmin
//! lacks). Writes go to every NameServer in the list, reads to one with fail-over.

use super::{print_json, report_writes, Admin, Failure, Table};
use clap::Subcommand;
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use std::process::ExitCode;

/// KV subcommands.
#[derive(Subcommand, Clone)]
pub enum KvCommand {
    /// Print one value.
    Get {
        /// Namespace (e.g. ORDER_TOPIC_CONFIG).
        namespace: String,
        /// Key.
        key: String,
    },
    /// Store a value on every NameServer.
    Put {
        /// Namespace.
        namespace: String,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Delete a key on every NameServer.
    Delete {
        /// Namespace.
        namespace: String,
        /// Key.
        key: String,
    },
    /// Print every key of a namespace.
    List {
        /// Namespace.
        namespace: String,
    },
}

/// Runs a KV subcommand.
pub async fn run(admin: Admin, cmd: KvCommand) -> Result<ExitCode, Failure> {
    match cmd {
        KvCommand::Get { namespace, key } => {
            let req = RemotingCommand::request(request::GET_KV_CONFIG)
                .with_ext("namespace", namespace.clone())
                .with_ext("key", key.clone());
            let resp = admin.read(req).await?;
            let value = resp.ext("value").unwrap_or_default().to_owned();
            if admin.common.json {
                print_json(
                    &serde_json::json!({"namespace": namespace, "key": key, "value": value}),
                );
            } else {
                println!("{value}");
            }
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Put {
            namespace,
            key,
            value,
        } => {
            let req = RemotingCommand::request(request::PUT_KV_CONFIG)
                .with_ext("namespace", namespace)
                .with_ext("key", key)
                .with_ext("value", value);
            let results = admin.write_all(req).await;
            Ok(report_writes(&admin.common, results, |_| None))
        }
        KvCommand::Delete { namespace, key } => {
            let req = RemotingCommand::request(request::DELETE_KV_CONFIG)
                .with_ext("namespace", namespace)
                .with_ext("key", key);
            let results = admin.write_all(req).await;
            Ok(report_writes(&admin.common, results, |_| None))
        }
        KvCommand::List { namespace } => {
            let req = RemotingCommand::request(request::GET_KVLIST_BY_NAMESPACE)
                .with_ext("namespace", namespace);
            let resp = admin.read(req).await?;
            let body = super::body_json(&resp.body, "KV table")?;
            if admin.common.json {
                print_json(&body["table"]);
            } else {
                let mut t = Table::new(&["KEY", "VALUE"]);
                for (k, v) in body["table"].as_object().into_iter().flatten() {
                    t.row(vec![k.clone(), super::route::text(v)]);
                }
                print!("{t}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
