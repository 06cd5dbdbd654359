//! SEND_MESSAGE headers: the long-named V1 form (code 10/324) and the one-letter V2 form
//! (310/320/325) that Java producers send by default to save header bytes.

crate::custom_header! {
    /// SEND_MESSAGE (10) request header, long field names.
    pub struct SendMessageRequestHeader {
        /// Producer group.
        producer_group: required String = "producerGroup",
        /// Target topic.
        topic: required String = "topic",
        /// Template topic for auto-creation (TBW102).
        default_topic: required String = "defaultTopic",
        /// Queue count for an auto-created topic.
        default_topic_queue_nums: required i32 = "defaultTopicQueueNums",
        /// Selected queue.
        queue_id: required i32 = "queueId",
        /// MessageSysFlag bits (compression, transaction type...).
        sys_flag: required i32 = "sysFlag",
        /// Client timestamp (ms) at send.
        born_timestamp: required i64 = "bornTimestamp",
        /// User flag.
        flag: required i32 = "flag",
        /// Properties string (0x01/0x02 separated).
        properties: optional String = "properties",
        /// Reconsume count (retry topics).
        reconsume_times: optional i32 = "reconsumeTimes",
        /// Unit mode.
        unit_mode: optional bool = "unitMode",
        /// Max reconsume times (retry topics).
        max_reconsume_times: optional i32 = "maxReconsumeTimes",
        /// True for SEND_BATCH_MESSAGE.
        batch: optional bool = "batch",
        /// Target broker name (5.x).
        broker_name: optional String = "brokerName",
    }
}

crate::custom_header! {
    /// SEND_MESSAGE_V2 (310) request header: V1's fields renamed `a`..`n`, written in that order.
    pub struct SendMessageRequestHeaderV2 {
        /// producerGroup.
        a: required String = "a",
        /// topic.
        b: required String = "b",
        /// defaultTopic.
        c: required String = "c",
        /// defaultTopicQueueNums.
        d: required i32 = "d",
        /// queueId.
        e: required i32 = "e",
        /// sysFlag.
        f: required i32 = "f",
        /// bornTimestamp.
        g: required i64 = "g",
        /// flag.
        h: required i32 = "h",
        /// properties.
        i: optional String = "i",
        /// reconsumeTimes.
        j: optional i32 = "j",
        /// unitMode.
        k: optional bool = "k",
        /// maxReconsumeTimes.
        l: optional i32 = "l",
        /// batch.
        m: optional bool = "m",
        /// brokerName.
        n: optional String = "n",
    }
}

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    fn from(v1: SendMessageRequestHeader) -> Self {
        SendMessageRequestHeaderV2 {
            a: v1.producer_group,
            b: v1.topic,
            c: v1.default_topic,
            d: v1.default_topic_queue_nums,
            e: v1.queue_id,
            f: v1.sys_flag,
            g: v1.born_timestamp,
            h: v1.flag,
            i: v1.properties,
            j: v1.reconsume_times,
            k: v1.unit_mode,
            l: v1.max_reconsume_times,
            m: v1.batch,
            n: v1.broker_name,
        }
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    fn from(v2: SendMessageRequestHeaderV2) -> Self {
        SendMessageRequestHeader {
            producer_group: v2.a,
            topic: v2.b,
            default_topic: v2.c,
            default_topic_queue_nums: v2.d,
            queue_id: v2.e,
            sys_flag: v2.f,
            born_timestamp: v2.g,
            flag: v2.h,
            properties: v2.i,
            reconsume_times: v2.j,
            unit_mode: v2.k,
            max_reconsume_times: v2.l,
            batch: v2.m,
            broker_name: v2.n,
        }
    }
}

crate::custom_header! {
    /// SEND_MESSAGE response header (Java fast-encoder order).
    pub struct SendMessageResponseHeader {
        /// offsetMsgId (store host + commit log offset), comma list for batches.
        msg_id: required String = "msgId",
        /// Queue written.
        queue_id: required i32 = "queueId",
        /// Consume-queue offset.
        queue_offset: required i64 = "queueOffset",
        /// Echo of the request's UNIQ_KEY.
        transaction_id: optional String = "transactionId",
        /// Inner-batch unique id.
        batch_uniq_id: optional String = "batchUniqId",
        /// 5.3 recall handle.
        recall_handle: optional String = "recallHandle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom_header::CommandCustomHeader;
    use crate::ExtFields;

    #[test]
    fn v1_and_v2_carry_the_same_fields() {
        let v2 = SendMessageRequestHeaderV2 {
            a: "PG".into(),
            b: "T".into(),
            c: "TBW102".into(),
            d: 4,
            e: 1,
            f: 0,
            g: 1_700_000_000_123,
            h: 0,
            i: Some("TAGS\u{1}A\u{2}".into()),
            j: Some(0),
            k: Some(false),
            l: None,
            m: Some(false),
            n: None,
        };
        let mut ext = ExtFields::new();
        v2.write_to(&mut ext);
        let keys: Vec<_> = ext.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "m"]
        );
        let v1: SendMessageRequestHeader = v2.clone().into();
        assert_eq!(v1.born_timestamp, 1_700_000_000_123);
        assert_eq!(SendMessageRequestHeaderV2::from(v1), v2);
    }
}
