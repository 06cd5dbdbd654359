//! The admin commands: the NameServer's (`rmq route`, `clusters`, `topics`, `kv`,
//! `namesrv-config`, `wipe-write-perm`, `add-write-perm`, `delete-topic`) and the brokers'
//! (`update-topic`, `topic-status`, `consumer-progress`, `consumer-connection`,
//! `update-sub-group`, `delete-sub-group`, `broker-status`, `broker-config`, `query-msg`,
//! [`brokers`]): mqadmin's everyday questions, answered by Java's servers and ours alike. One file per command; this module holds what they share: the
//! NameServer list with fail-over, error reporting with stable exit codes, frame tracing, output.

pub mod brokers;
pub mod clusters;
pub mod kv;
pub mod namesrv_config;
pub mod perm;
pub mod route;
pub mod topics;

mod table;

use clap::{Args, ValueEnum};
use rmq_model::{Call, CallError, NamesrvClient};
use rmq_protocol::codes::{request, response};
use rmq_protocol::{RemotingCommand, SerializeType};
use rmq_remoting::{ClientBuilder, ClientConfig, HookError, RemotingClient, RpcHook};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub use table::Table;

/// Options every admin command takes.
#[derive(Args, Clone)]
pub struct Common {
    /// NameServer addresses, "host:port;host:port" (default: the NAMESRV_ADDR environment variable).
    #[arg(short = 'n', long = "namesrv", env = "NAMESRV_ADDR", global = true)]
    pub namesrv: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 3000, global = true)]
    pub timeout: u64,
    /// Header encoding of requests.
    #[arg(long, value_enum, default_value = "json", global = true)]
    pub serialize: Serialize,
    /// Trace every frame sent and received on stderr.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    /// Dial with TLS, trusting any server certificate (Java's client test mode).
    #[arg(long, global = true)]
    pub tls: bool,
    /// Dial with TLS per a settings file with the Java keys (tls.client.trustCertPath,
    /// tls.client.certPath, tls.client.keyPath, tls.client.authServer).
    #[arg(long, global = true)]
    pub tls_config: Option<std::path::PathBuf>,
    /// Sign requests for a cluster with ACL (Java's AclClientRPCHook) with the credentials in
    /// RMQ_ACCESS_KEY / RMQ_SECRET_KEY (and RMQ_SECURITY_TOKEN).
    #[arg(long, global = true)]
    pub acl: bool,
    /// Sign requests with the credentials in this properties file (accessKey, secretKey,
    /// securityToken).
    #[arg(long, global = true)]
    pub acl_file: Option<std::path::PathBuf>,
}

impl Common {
    /// Client TLS from --tls-config or --tls (None: plaintext).
    pub fn client_tls(&self) -> Result<Option<rmq_remoting::ClientTlsConfig>, Failure> {
        match (&self.tls_config, self.tls) {
            (Some(f), _) => {
                let props = rmq_config::read_file(f).map_err(|e| Failure::usage(e.to_string()))?;
                Ok(Some(rmq_remoting::ClientTlsConfig::from_properties(&props)))
            }
            (None, true) => Ok(Some(rmq_remoting::ClientTlsConfig {
                trust_all: true,
                ..Default::default()
            })),
            (None, false) => Ok(None),
        }
    }

    /// The ACL signing hook from --acl-file or --acl (None: requests go unsigned).
    pub fn acl_hook(&self) -> Result<Option<Arc<dyn rmq_remoting::RpcHook>>, Failure> {
        use rmq_acl::{AclClientHook, Credentials};
        let credentials = match (&self.acl_file, self.acl) {
            (Some(f), _) => Credentials::from_file(f),
            (None, true) => Credentials::from_env(),
            (None, false) => return Ok(None),
        };
        let credentials = credentials.map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Some(Arc::new(AclClientHook::new(credentials))))
    }

    /// The NameServer list, "host:port;host:port" split; empty is a usage error.
    pub fn namesrv_addrs(&self) -> Result<Vec<String>, Failure> {
        let addrs: Vec<String> = self
            .namesrv
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if addrs.is_empty() {
            return Err(Failure::usage(
                "no NameServer: pass -n host:port[;host:port] or set NAMESRV_ADDR",
            ));
        }
        Ok(addrs)
    }
}

/// Request header encoding.
#[derive(Clone, Copy, ValueEnum)]
pub enum Serialize {
    /// JSON header (every NameServer).
    Json,
    /// ROCKETMQ binary header (Java and rmq).
    Rocketmq,
}

/// Exit codes scripts can rely on.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The server refused the request (its code and remark are printed).
    pub const REFUSED: u8 = 1;
    /// Bad usage (clap's own code).
    pub const USAGE: u8 = 2;
    /// No NameServer could be reached, or the request timed out.
    pub const UNREACHABLE: u8 = 3;
    /// What was asked for does not exist (TOPIC_NOT_EXIST, QUERY_NOT_FOUND).
    pub const NOT_FOUND: u8 = 4;
}

/// A failed admin call, with everything an operator needs in the message.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub exit: u8,
    /// What to print.
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            exit: exit::USAGE,
            message: message.into(),
        }
    }
}

/// "NAME (code)" for a request code.
pub fn request_name(code: i32) -> String {
    match request::name(code) {
        Some(n) => format!("{n} ({code})"),
        None => format!("request {code}"),
    }
}

/// Logs each frame at the client (before write / after the response arrives).
struct FrameTrace;

impl RpcHook for FrameTrace {
    fn before_request(&self, peer: &str, req: &mut RemotingCommand) -> Result<(), HookError> {
        let ext: Vec<String> = req
            .ext_fields
            .iter()
            .flat_map(|e| e.iter())
            .map(|(k, v)| format!("{k}={}", v.unwrap_or("null")))
            .collect();
        eprintln!(
            "-> {peer} {} opaque={} ext={{{}}} body={}B",
            request_name(req.code),
            req.opaque,
            ext.join(", "),
            req.body.len()
        );
        Ok(())
    }

    fn after_response(
        &self,
        peer: &str,
        _: &RemotingCommand,
        resp: &mut RemotingCommand,
    ) -> Result<(), HookError> {
        eprintln!(
            "<- {peer} code={} ({}) opaque={} remark={:?} body={}B",
            resp.code,
            response::name(resp.code).unwrap_or("?"),
            resp.opaque,
            resp.remark_str(),
            resp.body.len()
        );
        Ok(())
    }
}

/// A connected admin session: the NameServer list and a client.
pub struct Admin {
    /// The client (NameServer list set).
    pub client: RemotingClient,
    /// The typed NameServer client over it (fail-over for reads, fan-out for writes).
    pub ns: NamesrvClient,
    /// The addresses given, in the order given.
    pub addrs: Vec<String>,
    /// Options.
    pub common: Common,
}

impl Admin {
    /// Builds the client from the options; fails without any NameServer address.
    pub fn new(common: Common) -> Result<Self, Failure> {
        let addrs = common.namesrv_addrs()?;
        let config = ClientConfig {
            connect_timeout: Duration::from_millis(common.timeout.clamp(1, 3000)),
            tls: common.client_tls()?,
            ..Default::default()
        };
        let mut builder = ClientBuilder::new(config);
        if let Some(acl) = common.acl_hook()? {
            builder = builder.hook(acl);
        }
        if common.verbose {
            // After signing, so the trace shows the frames as sent.
            builder = builder.hook(Arc::new(FrameTrace));
        }
        let client = builder.build();
        client.update_namesrv_addresses(&addrs);
        let serialize = match common.serialize {
            Serialize::Json => SerializeType::Json,
            Serialize::Rocketmq => SerializeType::RocketMq,
        };
        let ns = NamesrvClient::new(client.clone(), Duration::from_millis(common.timeout.max(1)))
            .with_serialize_type(serialize);
        Ok(Admin {
            client,
            ns,
            addrs,
            common,
        })
    }

    /// Sends a read to one NameServer, failing over along the list; a refusal is a [`Failure`]
    /// naming the address, the request and the remark.
    pub async fn read<C: Call + Sync>(&self, req: &C) -> Result<C::Output, Failure> {
        let (addr, r) = self.ns.read(req).await;
        r.map_err(|e| self.failure(&addr, C::CODE, e))
    }

    /// Sends a write to every NameServer given (each keeps its own state, as mqadmin does) and
    /// returns each address's outcome, in the order given.
    pub async fn write_all<C: Call + Sync>(
        &self,
        req: &C,
    ) -> Vec<(String, Result<C::Output, Failure>)> {
        let mut out = Vec::new();
        for addr in &self.addrs {
            let r = self.ns.call_one(addr, req).await;
            out.push((addr.clone(), r.map_err(|e| self.failure(addr, C::CODE, e))));
        }
        out
    }

    /// What a failed call tells the user, with the exit code it maps to.
    pub(crate) fn failure(&self, addr: &str, code: i32, e: CallError) -> Failure {
        match e {
            CallError::Refused { code: c, remark } => Failure {
                exit: match c {
                    response::TOPIC_NOT_EXIST | response::QUERY_NOT_FOUND => exit::NOT_FOUND,
                    _ => exit::REFUSED,
                },
                message: format!(
                    "{addr} answered {} with code {c} ({}): {remark}",
                    request_name(code),
                    response::name(c).unwrap_or("?"),
                ),
            },
            CallError::Remoting(rmq_remoting::RemotingError::NoNamesrv) => Failure {
                exit: exit::UNREACHABLE,
                message: format!("{}: no NameServer address", request_name(code)),
            },
            CallError::Remoting(e) if addr.is_empty() => Failure {
                exit: exit::UNREACHABLE,
                message: format!(
                    "{}: no NameServer of {} reachable: {e}",
                    request_name(code),
                    self.addrs.join(";")
                ),
            },
            CallError::Remoting(e) => Failure {
                exit: exit::UNREACHABLE,
                message: format!("{} to {addr} failed: {e}", request_name(code)),
            },
            other => Failure {
                exit: exit::REFUSED,
                message: format!("{addr} answered {}: {other}", request_name(code)),
            },
        }
    }
}

/// Prints the outcome of a write sent to every NameServer; the exit code is the worst one.
pub fn report_writes<T>(
    common: &Common,
    results: Vec<(String, Result<T, Failure>)>,
    detail: impl Fn(&T) -> Option<String>,
) -> ExitCode {
    let mut worst = exit::OK;
    if common.json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|(addr, r)| match r {
                Ok(resp) => {
                    serde_json::json!({"namesrv": addr, "ok": true, "detail": detail(resp)})
                }
                Err(f) => serde_json::json!({"namesrv": addr, "ok": false, "error": f.message}),
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        let mut t = Table::new(&["NAMESRV", "RESULT"]);
        for (addr, r) in &results {
            match r {
                Ok(resp) => t.row(vec![
                    addr.clone(),
                    detail(resp).unwrap_or_else(|| "OK".into()),
                ]),
                Err(f) => t.row(vec![addr.clone(), format!("FAILED: {}", f.message)]),
            }
        }
        print!("{t}");
    }
    for (_, r) in &results {
        if let Err(f) = r {
            eprintln!("error: {}", f.message);
            worst = worst.max(f.exit);
        }
    }
    ExitCode::from(worst)
}

/// Runs an admin future on a small runtime and maps its outcome to the process exit code.
pub fn run(fut: impl std::future::Future<Output = Result<ExitCode, Failure>>) -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(fut) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.exit)
        }
    }
}

/// Prints a JSON value.
pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}
