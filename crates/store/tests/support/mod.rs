//! What the store's crash tests share: a record to put, and a copy of the files as a kill -9
//! leaves them.
#![allow(dead_code)]

use bytes::Bytes;
use rmq_store::record::Record;
use std::net::SocketAddr;

/// A record for `topic`/`queue_id` with `body` and `properties` (Java's property string); its
/// offsets and store time are the store's to set.
pub fn record(
    topic: &str,
    queue_id: i32,
    body: impl Into<Bytes>,
    properties: impl Into<String>,
) -> Record {
    let host: SocketAddr = "127.0.0.1:10911".parse().expect("an address");
    Record {
        queue_id,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: host,
        store_timestamp: 0,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: body.into(),
        topic: topic.into(),
        properties: properties.into(),
    }
}

/// Copies the store's files as they are now (what a kill -9 leaves), without its lock.
pub fn crash_copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            crash_copy(&entry.path(), &target);
        } else if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
