//! `rmq namesrv-config get | update NAME=VALUE...` (mqadmin getNamesrvConfig /
//! updateNamesrvConfig).

use super::{print_json, report_writes, Admin, Failure, Table};
use clap::Subcommand;
use rmq_model::call::{GetNamesrvConfig, UpdateNamesrvConfig};
use std::process::ExitCode;

/// namesrv-config subcommands.
#[derive(Subcommand, Clone)]
pub enum ConfigCommand {
    /// Print the configuration of every NameServer in the list.
    Get,
    /// Change properties on every NameServer (black-listed ones are refused by the server).
    Update {
        /// NAME=VALUE pairs (Java property names).
        #[arg(required = true)]
        pairs: Vec<String>,
    },
}

/// Runs a namesrv-config subcommand.
pub async fn run(admin: Admin, cmd: ConfigCommand) -> Result<ExitCode, Failure> {
    match cmd {
        ConfigCommand::Get => {
            let results = admin.write_all(&GetNamesrvConfig).await;
            let mut worst = 0u8;
            let mut json = serde_json::Map::new();
            let mut t = Table::new(&["NAMESRV", "NAME", "VALUE"]);
            for (addr, r) in results {
                match r {
                    Ok(text) => {
                        let mut props = serde_json::Map::new();
                        for line in text.lines() {
                            if let Some((k, v)) = line.split_once('=') {
                                props.insert(k.to_owned(), v.into());
                                t.row(vec![addr.clone(), k.to_owned(), v.to_owned()]);
                            }
                        }
                        json.insert(addr, props.into());
                    }
                    Err(f) => {
                        eprintln!("error: {}", f.message);
                        worst = worst.max(f.exit);
                    }
                }
            }
            if admin.common.json {
                print_json(&json.into());
            } else {
                print!("{t}");
            }
            Ok(ExitCode::from(worst))
        }
        ConfigCommand::Update { pairs } => {
            let mut body = String::new();
            for p in &pairs {
                if !p.contains('=') {
                    return Err(Failure::usage(format!("{p:?}: expected NAME=VALUE")));
                }
                body.push_str(p);
                body.push('\n');
            }
            let results = admin
                .write_all(&UpdateNamesrvConfig { properties: body })
                .await;
            Ok(report_writes(&admin.common, results, |_| None))
        }
    }
}
