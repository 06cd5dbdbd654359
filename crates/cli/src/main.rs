//! `rmq`: one native binary for RocketMQ operators: a NameServer and a broker (alone or both in
//! one process), a producer and a consumer, admin commands, the dashboard, store tools, the
//! crash torture and the benchmarks. Each subcommand lives in its own module.

mod admin;
mod bench_cmd;
mod broker_cmd;
mod consume_cmd;
mod dashboard;
mod memory;
mod namesrv_cmd;
mod send_cmd;
mod store_cmd;
mod torture;

use admin::{Admin, Common};

/// mimalloc: the broker allocates a record on a runtime thread and frees it on the store
/// thread; glibc's malloc serialises such cross-thread frees on its arena locks (measured:
/// ~10 % of the broker's time in lock waits at 50k sends/s), mimalloc frees them lock-free.
/// Server processes give its pages back to the OS after a burst: see `memory.rs`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// rmq: Apache RocketMQ's remoting layer and services, native.
#[derive(Parser)]
#[command(name = "rmq", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a NameServer and a broker in one process (127.0.0.1:9876 and :10911, store ~/store).
    Standalone(broker_cmd::StandaloneArgs),
    /// Run a broker registering with NameServers (127.0.0.1:10911, store ~/store).
    Broker(broker_cmd::BrokerArgs),
    /// Run a NameServer (127.0.0.1:9876 by default).
    Namesrv(namesrv_cmd::NamesrvArgs),
    /// Brokers and queues of a topic (mqadmin topicRoute).
    #[command(alias = "topicRoute")]
    Route {
        /// Topic name.
        topic: String,
        #[command(flatten)]
        common: Common,
    },
    /// Read-only looks at a store directory (ours or a Java broker's): inspect, verify.
    Store {
        #[command(subcommand)]
        command: store_cmd::StoreCommand,
    },
    /// Serve the dashboard (clusters, topics, consumer groups, message lookup) over HTTP.
    Dashboard {
        /// Address to serve the pages on.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
        listen: String,
        #[command(flatten)]
        common: Common,
    },
    /// Clusters, broker groups, addresses and versions (mqadmin clusterList).
    #[command(alias = "clusterList")]
    Clusters {
        #[command(flatten)]
        common: Common,
    },
    /// Every topic, or a cluster's (mqadmin topicList).
    #[command(alias = "topicList")]
    Topics {
        /// Only topics with queues in this cluster.
        #[arg(long)]
        cluster: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// KV config: get, put, delete, list.
    Kv {
        #[command(subcommand)]
        command: admin::kv::KvCommand,
        #[command(flatten)]
        common: Common,
    },
    /// NameServer configuration: get, update.
    NamesrvConfig {
        #[command(subcommand)]
        command: admin::namesrv_config::ConfigCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Remove the write permission of a broker's queues (mqadmin wipeWritePerm).
    #[command(alias = "wipeWritePerm")]
    WipeWritePerm {
        /// Broker name.
        broker: String,
        #[command(flatten)]
        common: Common,
    },
    /// Restore the write permission of a broker's queues (mqadmin addWritePerm).
    #[command(alias = "addWritePerm")]
    AddWritePerm {
        /// Broker name.
        broker: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a topic's routes from the NameServers (mqadmin deleteTopic, NameServer side).
    #[command(alias = "deleteTopic")]
    DeleteTopic {
        /// Topic name.
        topic: String,
        /// Only from this cluster's brokers.
        #[arg(long)]
        cluster: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Create or update a topic on every master of a cluster, or one broker (mqadmin updateTopic).
    #[command(alias = "updateTopic")]
    UpdateTopic {
        /// Topic name.
        #[arg(short = 't', long)]
        topic: String,
        /// Every master of this cluster.
        #[arg(short = 'c', long)]
        cluster: Option<String>,
        /// This broker (host:port).
        #[arg(short = 'b', long)]
        broker: Option<String>,
        /// Read queues.
        #[arg(short = 'r', long, default_value_t = 8)]
        read_queue_nums: i32,
        /// Write queues.
        #[arg(short = 'w', long, default_value_t = 8)]
        write_queue_nums: i32,
        /// Permission: 6 read+write, 4 read, 2 write.
        #[arg(short = 'p', long, default_value_t = 6)]
        perm: i32,
        /// An order topic.
        #[arg(short = 'o', long)]
        order: bool,
        /// Attributes, `+key=value,-key`.
        #[arg(short = 'a', long)]
        attributes: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Per queue min/max offsets and last update of a topic (mqadmin topicStatus).
    #[command(alias = "topicStatus")]
    TopicStatus {
        /// Topic name.
        #[arg(short = 't', long)]
        topic: String,
        #[command(flatten)]
        common: Common,
    },
    /// A consumer group's progress per queue, its lag and TPS; every group without -g
    /// (mqadmin consumerProgress).
    #[command(alias = "consumerProgress")]
    ConsumerProgress {
        /// The group.
        #[arg(short = 'g', long)]
        group: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A consumer group's clients, versions and subscriptions (mqadmin consumerConnection).
    #[command(alias = "consumerConnection")]
    ConsumerConnection {
        /// The group.
        #[arg(short = 'g', long)]
        group: String,
        #[command(flatten)]
        common: Common,
    },
    /// Create or update a subscription group (mqadmin updateSubGroup).
    #[command(alias = "updateSubGroup")]
    UpdateSubGroup {
        /// The group.
        #[arg(short = 'g', long)]
        group: String,
        /// Every master of this cluster.
        #[arg(short = 'c', long)]
        cluster: Option<String>,
        /// This broker (host:port).
        #[arg(short = 'b', long)]
        broker: Option<String>,
        /// Queues of the group's retry topic.
        #[arg(short = 'q', long, default_value_t = 1)]
        retry_queue_nums: i32,
        /// Redeliveries before the DLQ.
        #[arg(short = 'r', long, default_value_t = 16)]
        retry_max_times: i32,
        /// Consumption allowed.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        consume_enable: bool,
        /// Broadcasting allowed.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        broadcast_enable: bool,
        /// Orderly consumers.
        #[arg(long)]
        orderly: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a subscription group (mqadmin deleteSubGroup).
    #[command(alias = "deleteSubGroup")]
    DeleteSubGroup {
        /// The group.
        #[arg(short = 'g', long)]
        group: String,
        /// Every master of this cluster.
        #[arg(short = 'c', long)]
        cluster: Option<String>,
        /// This broker (host:port).
        #[arg(short = 'b', long)]
        broker: Option<String>,
        /// Also delete the group's consumer offsets.
        #[arg(long)]
        clean_offset: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Move a consumer group's offsets of a topic to a time (mqadmin resetOffsetByTime).
    #[command(alias = "resetOffsetByTime")]
    ResetOffset {
        /// The group.
        #[arg(short = 'g', long)]
        group: String,
        /// The topic.
        #[arg(short = 't', long)]
        topic: String,
        /// ms since the epoch, `now`, or -1 (the end of each queue).
        #[arg(short = 's', long, allow_hyphen_values = true)]
        timestamp: String,
        /// Also move offsets forward (false: only back).
        #[arg(short = 'f', long, default_value_t = true, action = clap::ArgAction::Set)]
        force: bool,
        #[command(flatten)]
        common: Common,
    },
    /// A broker's runtime figures, every broker without -b (mqadmin brokerStatus).
    #[command(alias = "brokerStatus")]
    BrokerStatus {
        /// This broker (host:port).
        #[arg(short = 'b', long)]
        broker: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A broker's configuration: `get`, or `update KEY VALUE` (mqadmin getBrokerConfig,
    /// updateBrokerConfig).
    #[command(alias = "brokerConfig")]
    BrokerConfig {
        /// get or update.
        action: String,
        /// update: the property.
        key: Option<String>,
        /// update: its value.
        value: Option<String>,
        /// This broker (host:port).
        #[arg(short = 'b', long)]
        broker: Option<String>,
        /// Every master of this cluster.
        #[arg(short = 'c', long)]
        cluster: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A message by id (offsetMsgId, or UNIQ_KEY with --topic), by key, or by queue offset:
    /// headers, properties, body (mqadmin queryMsgById / queryMsgByKey / queryMsgByOffset).
    #[command(alias = "queryMsg")]
    QueryMsg {
        /// offsetMsgId, or the client's message id (with --topic).
        #[arg(short = 'i', long)]
        id: Option<String>,
        /// A key (KEYS property), with --topic.
        #[arg(short = 'k', long)]
        key: Option<String>,
        /// Topic.
        #[arg(short = 't', long)]
        topic: Option<String>,
        /// Queue id, with --topic and --offset.
        #[arg(short = 'q', long)]
        queue: Option<i32>,
        /// Queue offset, with --topic and --queue.
        #[arg(short = 'o', long)]
        offset: Option<i64>,
        /// Write the (first) body to this file.
        #[arg(long)]
        body_out: Option<std::path::PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Send messages to a topic (sync, async or oneway) with a summary.
    Send(send_cmd::SendArgs),
    /// Consume a topic as a group: messages as they arrive, then a summary.
    Consume(consume_cmd::ConsumeArgs),
    /// Benchmark any remoting server (code 1 echo, code 2 oneway), or compare ours with raw TCP.
    Bench(bench_cmd::BenchArgs),
    /// Crash torture: SIGKILL `rmq standalone` under load, restart it, read every message back.
    Torture(torture::TortureArgs),
}

/// Logs to stderr; colour only when stderr is a terminal (log files and journald get plain
/// text). A panic anywhere is logged once, with its backtrace, through the same subscriber.
fn init_tracing(default: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    std::panic::set_hook(Box::new(|info| {
        // A closed stdout (`rmq consume | head`) makes println! panic on EPIPE: stop quietly
        // with the status a SIGPIPE death gives, as other Unix tools do.
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.contains("failed printing to stdout") {
            std::process::exit(141);
        }
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!("panic: {info}\n{backtrace}");
    }));
}

/// Runs an admin command with its options.
fn admin_cmd<F, Fut>(common: Common, f: F) -> ExitCode
where
    F: FnOnce(Admin) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, admin::Failure>>,
{
    init_tracing(if common.verbose { "debug" } else { "error" });
    admin::run(async move { f(Admin::new(common)?).await })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => {
            init_tracing("warn");
            bench_cmd::run(args)
        }
        Command::Consume(args) => {
            init_tracing(if args.verbose() { "debug" } else { "error" });
            consume_cmd::run(args)
        }
        Command::Torture(args) => {
            init_tracing("error");
            torture::run(args)
        }
        Command::Send(args) => {
            init_tracing(if args.verbose() { "debug" } else { "error" });
            send_cmd::run(args)
        }
        Command::Standalone(args) => {
            init_tracing("info");
            broker_cmd::run_standalone(args)
        }
        Command::Broker(args) => {
            init_tracing("info");
            broker_cmd::run_broker(args)
        }
        Command::Namesrv(args) => {
            init_tracing("info");
            namesrv_cmd::run(args)
        }
        Command::Route { topic, common } => admin_cmd(common, |a| admin::route::run(a, topic)),
        Command::Clusters { common } => admin_cmd(common, admin::clusters::run),
        Command::Store { command } => {
            init_tracing("warn");
            store_cmd::run(command)
        }
        Command::Dashboard { listen, common } => {
            init_tracing("warn");
            admin::run(async move {
                let admin = Admin::new(common)?;
                let (addr, task) = dashboard::serve(admin, &listen, namesrv_cmd::stop_signal())
                    .await
                    .map_err(|e| admin::Failure {
                        exit: admin::exit::REFUSED,
                        message: format!("--listen {listen}: {e}"),
                    })?;
                println!("dashboard on http://{addr}/");
                let _ = task.await;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Topics { cluster, common } => {
            admin_cmd(common, |a| admin::topics::run(a, cluster))
        }
        Command::Kv { command, common } => admin_cmd(common, |a| admin::kv::run(a, command)),
        Command::NamesrvConfig { command, common } => {
            admin_cmd(common, |a| admin::namesrv_config::run(a, command))
        }
        Command::WipeWritePerm { broker, common } => {
            admin_cmd(common, |a| admin::perm::write_perm(a, broker, true))
        }
        Command::AddWritePerm { broker, common } => {
            admin_cmd(common, |a| admin::perm::write_perm(a, broker, false))
        }
        Command::UpdateTopic {
            topic,
            cluster,
            broker,
            read_queue_nums,
            write_queue_nums,
            perm,
            order,
            attributes,
            common,
        } => admin_cmd(common, |a| {
            admin::brokers::update_topic(
                a,
                topic,
                cluster,
                broker,
                read_queue_nums,
                write_queue_nums,
                perm,
                order,
                attributes,
            )
        }),
        Command::TopicStatus { topic, common } => {
            admin_cmd(common, |a| admin::brokers::topic_status(a, topic))
        }
        Command::ConsumerProgress { group, common } => {
            admin_cmd(common, |a| admin::brokers::consumer_progress(a, group))
        }
        Command::ConsumerConnection { group, common } => {
            admin_cmd(common, |a| admin::brokers::consumer_connection(a, group))
        }
        Command::UpdateSubGroup {
            group,
            cluster,
            broker,
            retry_queue_nums,
            retry_max_times,
            consume_enable,
            broadcast_enable,
            orderly,
            common,
        } => admin_cmd(common, |a| {
            admin::brokers::update_sub_group(
                a,
                group,
                cluster,
                broker,
                retry_queue_nums,
                retry_max_times,
                consume_enable,
                broadcast_enable,
                orderly,
            )
        }),
        Command::DeleteSubGroup {
            group,
            cluster,
            broker,
            clean_offset,
            common,
        } => admin_cmd(common, |a| {
            admin::brokers::delete_sub_group(a, group, cluster, broker, clean_offset)
        }),
        Command::ResetOffset {
            group,
            topic,
            timestamp,
            force,
            common,
        } => admin_cmd(common, |a| async move {
            let ts = match timestamp.as_str() {
                "now" => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
                t => t.parse::<i64>().map_err(|_| {
                    admin::Failure::usage(format!("-s {t:?}: ms since the epoch, now or -1"))
                })?,
            };
            admin::brokers::reset_offset(a, group, topic, ts, force).await
        }),
        Command::BrokerStatus { broker, common } => {
            admin_cmd(common, |a| admin::brokers::broker_status(a, broker))
        }
        Command::BrokerConfig {
            action,
            key,
            value,
            broker,
            cluster,
            common,
        } => admin_cmd(common, |a| async move {
            let update = match (action.as_str(), key, value) {
                ("get", None, None) => None,
                ("update", Some(k), Some(v)) => Some((k, v)),
                _ => {
                    return Err(admin::Failure::usage(
                        "broker-config get | broker-config update KEY VALUE",
                    ))
                }
            };
            admin::brokers::broker_config(a, broker, cluster, update).await
        }),
        Command::QueryMsg {
            id,
            key,
            topic,
            queue,
            offset,
            body_out,
            common,
        } => admin_cmd(common, |a| async move {
            use admin::brokers::MsgQuery;
            let q = match (id, key, topic, queue, offset) {
                (Some(id), None, t, None, None) => MsgQuery::Id(id, t),
                (None, Some(k), Some(t), None, None) => MsgQuery::Key(t, k),
                (None, None, Some(t), Some(q), Some(o)) => MsgQuery::Offset(t, q, o),
                _ => {
                    return Err(admin::Failure::usage(
                        "query-msg --id ID [--topic T] | --key K --topic T | --topic T --queue Q --offset O",
                    ))
                }
            };
            admin::brokers::query_msg(a, q, body_out).await
        }),
        Command::DeleteTopic {
            topic,
            cluster,
            common,
        } => admin_cmd(common, |a| admin::perm::delete_topic(a, topic, cluster)),
    }
}
