//! `rmq`: one native binary for RocketMQ operators: the NameServer, admin commands and the
//! remoting benchmark. Each subcommand lives in its own module.

mod bench_cmd;
mod namesrv_cmd;

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
    /// Run a NameServer (127.0.0.1:9876 by default).
    Namesrv(namesrv_cmd::NamesrvArgs),
    /// Benchmark any remoting server (code 1 echo, code 2 oneway), or compare ours with raw TCP.
    Bench(bench_cmd::BenchArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench_cmd::run(args),
        Command::Namesrv(args) => namesrv_cmd::run(args),
    }
}
