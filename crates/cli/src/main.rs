//! `rmq`: one native binary for RocketMQ operators: the NameServer, admin commands and the
//! remoting benchmark. Each subcommand lives in its own module.

mod admin;
mod bench_cmd;
mod broker_cmd;
mod consume_cmd;
mod namesrv_cmd;
mod send_cmd;

use admin::{Admin, Common};

/// mimalloc: the broker allocates a record on a runtime thread and frees it on the store
/// thread; glibc's malloc serialises such cross-thread frees on its arena locks (measured:
/// ~10 % of the broker's time in lock waits at 50k sends/s), mimalloc frees them lock-free.
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
    /// Send messages to a topic (sync, async or oneway) with a summary.
    Send(send_cmd::SendArgs),
    /// Consume a topic as a group: messages as they arrive, then a summary.
    Consume(consume_cmd::ConsumeArgs),
    /// Benchmark any remoting server (code 1 echo, code 2 oneway), or compare ours with raw TCP.
    Bench(bench_cmd::BenchArgs),
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
        Command::DeleteTopic {
            topic,
            cluster,
            common,
        } => admin_cmd(common, |a| admin::perm::delete_topic(a, topic, cluster)),
    }
}
