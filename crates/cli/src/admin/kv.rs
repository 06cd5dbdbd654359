//! `rmq kv get|put|delete|list` (mqadmin updateKvConfig / deleteKvConfig, and the reads mqadmin
//! lacks). Writes go to every NameServer in the list, reads to one with fail-over.

use super::{print_json, report_writes, Admin, Failure, Table};
use clap::Subcommand;
use rmq_model::call::{DeleteKv, GetKv, GetKvList, PutKv};
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
            let value = admin
                .read(&GetKv {
                    namespace: namespace.clone(),
                    key: key.clone(),
                })
                .await?;
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
            let req = PutKv {
                namespace,
                key,
                value,
            };
            let results = admin.write_all(&req).await;
            Ok(report_writes(&admin.common, results, |_| None))
        }
        KvCommand::Delete { namespace, key } => {
            let results = admin.write_all(&DeleteKv { namespace, key }).await;
            Ok(report_writes(&admin.common, results, |_| None))
        }
        KvCommand::List { namespace } => {
            let kv = admin.read(&GetKvList { namespace }).await?;
            if admin.common.json {
                print_json(&serde_json::json!(kv.table));
            } else {
                let mut t = Table::new(&["KEY", "VALUE"]);
                for (k, v) in kv.table {
                    t.row(vec![k, v]);
                }
                print!("{t}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
