//! A NameServer and a broker on 127.0.0.1:0 with their files in a temp dir (what `rmq
//! standalone` runs), restartable on the same store and port, plus wire helpers.
#![allow(dead_code)]

pub mod capture;
pub mod heap;

use rmq_broker::config::BrokerConfig;
use rmq_broker::Broker;
use rmq_namesrv::NameServer;
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ClientConfig, RemotingClient};
use std::time::Duration;

/// NameServer + broker.
pub struct Standalone {
    pub ns: NameServer,
    pub broker: Option<Broker>,
    pub config: BrokerConfig,
    pub dir: tempfile::TempDir,
    _ns_dir: tempfile::TempDir,
}

impl Standalone {
    /// Starts both; `tune` adjusts the broker's settings (flush type, sizes).
    pub async fn start(tune: impl FnOnce(&mut BrokerConfig)) -> Standalone {
        let (ns, ns_dir) = rmq_testkit::namesrv().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = BrokerConfig {
            broker_name: "broker-a".into(),
            listen_port: 0,
            namesrv_addr: ns.local_addr().to_string(),
            store_path_root_dir: dir.path().display().to_string(),
            mapped_file_size_commit_log: 16 << 20,
            mapped_file_size_consume_queue: 20 * 10_000,
            max_hash_slot_num: 1000,
            max_index_num: 4000,
            ..BrokerConfig::default()
        };
        tune(&mut config);
        let broker = Broker::start(config.clone()).await.expect("broker starts");
        config.listen_port = broker.local_addr().port();
        Standalone {
            ns,
            broker: Some(broker),
            config,
            dir,
            _ns_dir: ns_dir,
        }
    }

    pub fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("broker running")
    }

    pub fn broker_addr(&self) -> String {
        self.broker().local_addr().to_string()
    }

    pub fn ns_addr(&self) -> String {
        self.ns.local_addr().to_string()
    }

    /// Graceful stop of the broker.
    pub async fn stop_broker(&mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
    }

    /// Starts the broker again on the same store and port.
    pub async fn start_broker(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Broker::start(self.config.clone()).await {
                Ok(b) => {
                    self.broker = Some(b);
                    return;
                }
                // The old listener's port can take a moment to be free again.
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("restart: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("broker restart: {e}"),
            }
        }
    }
}

/// A client speaking as a Java client.
pub fn client() -> RemotingClient {
    RemotingClient::new(ClientConfig {
        language: rmq_protocol::LanguageCode::JAVA,
        ..Default::default()
    })
}

/// A client speaking as a Java client from source address `ip` (127.0.0.x stands for another
/// client host: the broker's per-client budgets key on the source IP).
pub fn client_from(ip: &str) -> RemotingClient {
    RemotingClient::new(ClientConfig {
        language: rmq_protocol::LanguageCode::JAVA,
        local_ip: Some(ip.parse().expect("an IP address")),
        ..Default::default()
    })
}

/// Sends `cmd` and returns the answer.
pub async fn call(c: &RemotingClient, addr: &str, cmd: RemotingCommand) -> RemotingCommand {
    c.invoke_sync(addr, cmd, Duration::from_secs(10))
        .await
        .expect("broker answers")
}

/// UPDATE_AND_CREATE_TOPIC with `queues` read and write queues, as mqadmin updateTopic sends it.
pub async fn create_topic(c: &RemotingClient, addr: &str, topic: &str, queues: i32) {
    let cmd = RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC)
        .with_ext("topic", topic.to_owned())
        .with_ext("defaultTopic", "TBW102")
        .with_ext("readQueueNums", queues.to_string())
        .with_ext("writeQueueNums", queues.to_string())
        .with_ext("perm", "6")
        .with_ext("topicFilterType", "SINGLE_TAG")
        .with_ext("topicSysFlag", "0")
        .with_ext("order", "false");
    let r = call(c, addr, cmd).await;
    assert_eq!(r.code, 0, "create topic: {:?}", r.remark);
}

// Shared with the other crates' tests (rmq-testkit); not every test binary uses both.
#[allow(unused_imports)]
pub use rmq_testkit::requests::{pull_request, send_request};

/// The records of a pull answer's body.
pub fn records(body: &bytes::Bytes) -> Vec<rmq_store::record::Record> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        match rmq_store::record::decode(&body.slice(at..), true).expect("valid record") {
            rmq_store::record::Found::Message(r, size) => {
                out.push(*r);
                at += size;
            }
            rmq_store::record::Found::Blank => break,
        }
    }
    out
}

/// Resident memory of this process (the broker runs in it), in KiB.
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS")
}

/// Anonymous resident memory of this process (heap and stacks; not the store's mapped files,
/// whose pages count in `VmRSS` as they are written), in KiB.
pub fn anon_rss_kib() -> u64 {
    proc_status_kib("RssAnon")
}

/// A `kB` line of `/proc/self/status` (0 where there is none).
pub fn proc_status_kib(field: &str) -> u64 {
    rmq_testkit::process::status_kib("self", field).unwrap_or(0)
}

/// Sends a long-polling pull of `group` on `topic`/`queue` (held up to 20 s) from a task:
/// the handle answers when the broker does.
pub fn long_poll(
    c: &RemotingClient,
    addr: &str,
    group: &str,
    topic: &str,
    queue: i32,
) -> tokio::task::JoinHandle<Result<RemotingCommand, rmq_remoting::RemotingError>> {
    let (c, addr) = (c.clone(), addr.to_owned());
    let req = pull_request(group, topic, queue, 0, 20_000);
    tokio::spawn(async move { c.invoke_sync(&addr, req, Duration::from_secs(30)).await })
}

/// Polls `done` every 20 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
