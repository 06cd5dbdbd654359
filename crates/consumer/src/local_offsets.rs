//! BROADCASTING offsets: each consumer keeps its own, in a file
//! (`<dir>/<clientId>/<group>/offsets.json`, Java's `LocalFileOffsetStore` layout and format:
//! `{"offsetTable":{{"brokerName":..,"queueId":..,"topic":..}:12}}`), replaced atomically
//! (`rmq_config::persist::write_atomic`).

use crate::MessageQueue;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The offsets of one broadcasting consumer.
pub struct LocalOffsets {
    path: PathBuf,
    table: Mutex<BTreeMap<MessageQueue, i64>>,
}

impl LocalOffsets {
    /// Loads `<dir>/<client_id>/<group>/offsets.json` (an absent file is an empty table; a
    /// corrupt one is logged and treated as empty, as Java does with its `.bak` absent).
    pub fn load(dir: &Path, client_id: &str, group: &str) -> LocalOffsets {
        let path = dir.join(client_id).join(group).join("offsets.json");
        let table = std::fs::read(&path)
            .ok()
            .map(|b| parse(&b))
            .unwrap_or_default();
        LocalOffsets {
            path,
            table: Mutex::new(table),
        }
    }

    /// A queue's offset.
    pub fn get(&self, mq: &MessageQueue) -> Option<i64> {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(mq)
            .copied()
    }

    /// Records a queue's offset (in memory; [`LocalOffsets::persist`] writes it).
    pub fn set(&self, mq: &MessageQueue, offset: i64) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(mq.clone(), offset);
    }

    /// Writes the file (blocking: call off the runtime).
    pub fn persist(&self) -> std::io::Result<()> {
        let text = {
            let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
            let table = rmq_model::route::write_mq_map(t.iter().map(|(mq, o)| (mq, o.to_string())));
            format!("{{\"offsetTable\":{table}}}")
        };
        rmq_config::persist::write_atomic(&self.path, text.as_bytes())
    }
}

/// Reads fastjson's object-keyed map: `{"offsetTable":{{mq}:n,...}}` (also the body of a
/// broker's RESET_CONSUMER_CLIENT_OFFSET).
pub(crate) fn parse(bytes: &[u8]) -> BTreeMap<MessageQueue, i64> {
    rmq_model::route::parse_mq_map(bytes)
        .into_iter()
        .filter_map(|(mq, v)| Some((mq, v.as_i64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javas_format_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let o = LocalOffsets::load(dir.path(), "127.0.0.1@DEFAULT", "G");
        let mq = |q| MessageQueue {
            broker_name: "broker-a".into(),
            queue_id: q,
            topic: "T".into(),
        };
        o.set(&mq(0), 12);
        o.set(&mq(3), 7);
        o.persist().unwrap();
        let text =
            std::fs::read_to_string(dir.path().join("127.0.0.1@DEFAULT/G/offsets.json")).unwrap();
        assert_eq!(
            text,
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:12,{"brokerName":"broker-a","queueId":3,"topic":"T"}:7}}"#
        );
        let again = LocalOffsets::load(dir.path(), "127.0.0.1@DEFAULT", "G");
        assert_eq!(
            (again.get(&mq(0)), again.get(&mq(3)), again.get(&mq(1))),
            (Some(12), Some(7), None)
        );
    }
}
