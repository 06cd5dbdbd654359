//! Bodies of the consumer-group requests at a broker: the member list a rebalance divides
//! queues by, and the orderly-lock request and answer. fastjson writes their keys in
//! alphabetical order, as the field order here does.

use crate::route::MessageQueue;
use crate::ModelError;
use serde::{Deserialize, Serialize};

/// GET_CONSUMER_LIST_BY_GROUP (38) answer (`GetConsumerListByGroupResponseBody`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerIdList {
    /// Client ids of the group's members, in the broker's channel order.
    pub consumer_id_list: Vec<String>,
}

impl ConsumerIdList {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a body written by any broker.
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "GetConsumerListByGroupResponseBody")
    }
}

/// LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42) request body (`LockBatchRequestBody`,
/// `UnlockBatchRequestBody`): the queues a member of an orderly group locks or releases.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchBody {
    /// The member's client id (the lock owner).
    pub client_id: String,
    /// The consumer group.
    pub consumer_group: String,
    /// The queues.
    pub mq_set: Vec<MessageQueue>,
    /// Lock only at this broker (no quorum round; rmq never does one).
    pub only_this_broker: bool,
}

impl LockBatchBody {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a body written by any client.
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "LockBatchRequestBody")
    }
}

/// LOCK_BATCH_MQ (41) answer (`LockBatchResponseBody`): the queues now owned by the caller.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct LockedQueues {
    /// The queues locked for the caller.
    #[serde(rename = "lockOKMQSet", default)]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

impl LockedQueues {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a body written by any broker.
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "LockBatchResponseBody")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_fastjson_shaped() {
        let mq = MessageQueue {
            broker_name: "b".into(),
            queue_id: 1,
            topic: "T".into(),
        };
        let lock = LockBatchBody {
            client_id: "c".into(),
            consumer_group: "G".into(),
            mq_set: vec![mq.clone()],
            only_this_broker: false,
        };
        assert_eq!(
            String::from_utf8(lock.encode()).unwrap(),
            r#"{"clientId":"c","consumerGroup":"G","mqSet":[{"brokerName":"b","queueId":1,"topic":"T"}],"onlyThisBroker":false}"#
        );
        assert_eq!(LockBatchBody::decode(&lock.encode()).unwrap(), lock);
        let ok = LockedQueues {
            lock_ok_mq_set: vec![mq],
        };
        assert!(String::from_utf8(ok.encode())
            .unwrap()
            .starts_with(r#"{"lockOKMQSet":[{"#));
        let ids = ConsumerIdList::decode(br#"{"consumerIdList":["a","b"]}"#).unwrap();
        assert_eq!(ids.consumer_id_list, ["a", "b"]);
    }
}
