//! GET_BROKER_RUNTIME_INFO (28): the KVTable mqadmin `clusterList` and `brokerStatus` read
//! (spec §2.9.5), built from the store, the counters and the schedule offsets.

use crate::reply::ok;
use crate::BrokerState;
use rmq_protocol::RemotingCommand;
use std::sync::atomic::Ordering;

/// Java's `UtilAll.humanReadableByteCount(bytes, false)`: `12.35 GiB`.
fn human_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let exp = ((bytes as f64).ln() / 1024f64.ln()) as i32;
    let unit = ["K", "M", "G", "T", "P", "E"][(exp as usize - 1).min(5)];
    format!("{:.2} {unit}iB", bytes as f64 / 1024f64.powi(exp))
}

/// `[ D days, H hours, M minutes, S seconds ]`.
fn runtime_text(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    format!(
        "[ {} days, {} hours, {} minutes, {} seconds ]",
        secs / 86400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// One KVTable row.
type Row = (String, String);

/// The answer: every key, all values strings.
pub async fn runtime_info(s: &BrokerState) -> RemotingCommand {
    let mut t = counter_rows(s);
    t.extend(store_rows(s).await);
    t.extend(fixed_rows(s));
    t.extend(schedule_rows(s).await);
    let table: serde_json::Map<String, serde_json::Value> = t
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    ok().with_body(serde_json::to_vec(&serde_json::json!({ "table": table })).unwrap_or_default())
}

/// Boot time, version and the put/get counters.
fn counter_rows(s: &BrokerState) -> Vec<Row> {
    let (put_tps, get_tps) = s.stats.tps();
    let put_total = s.stats.put_messages.load(Ordering::Relaxed);
    let get_total = s.stats.got_messages.load(Ordering::Relaxed);
    let put_bytes = s.stats.put_bytes.load(Ordering::Relaxed);
    let now = crate::now_ms();
    vec![
        ("bootTimestamp".into(), s.boot_ms.to_string()),
        ("runtime".into(), runtime_text(now - s.boot_ms)),
        ("brokerActive".into(), "true".into()),
        ("brokerVersionDesc".into(), "V5_3_3".into()),
        (
            "brokerVersion".into(),
            rmq_protocol::MqVersion::CURRENT.to_string(),
        ),
        ("putTps".into(), put_tps),
        ("getTransferredTps".into(), get_tps.clone()),
        ("getTotalTps".into(), get_tps.clone()),
        ("getFoundTps".into(), get_tps),
        ("getMissTps".into(), "0.0 0.0 0.0".into()),
        ("putMessageTimesTotal".into(), put_total.to_string()),
        ("putMessageSizeTotal".into(), put_bytes.to_string()),
        (
            "putMessageFailedTimes".into(),
            s.stats.put_failures.load(Ordering::Relaxed).to_string(),
        ),
        (
            "putMessageAverageSize".into(),
            format!("{:.1}", put_bytes as f64 / put_total.max(1) as f64),
        ),
        (
            "putMessageEntireTimeMax".into(),
            (s.stats.put_max_micros.load(Ordering::Relaxed) / 1000).to_string(),
        ),
        ("getMessageEntireTimeMax".into(), "0".into()),
        ("msgPutTotalTodayNow".into(), put_total.to_string()),
        ("msgGetTotalTodayNow".into(), get_total.to_string()),
        ("msgPutTotalTodayMorning".into(), "0".into()),
        ("msgGetTotalTodayMorning".into(), "0".into()),
        ("msgPutTotalYesterdayMorning".into(), "0".into()),
        ("msgGetTotalYesterdayMorning".into(), "0".into()),
    ]
}

/// Disk use, the commit log's range and whether the store still takes writes.
async fn store_rows(s: &BrokerState) -> Vec<Row> {
    let root = s.config().store_root();
    let ((log_start, log_end), write_failure) = s
        .store
        .run(|st| (st.log_range(), st.write_failure().map(str::to_owned)))
        .await
        .unwrap_or(((0, 0), Some("the store is shut down".into())));
    let disk = rmq_store::store::disk_used_ratio(&root).unwrap_or(-1.0);
    let capacity = match rmq_store::store::disk_space(&root) {
        Ok((total, free)) => format!(
            "Total : {}, Free : {}.",
            human_bytes(total),
            human_bytes(free)
        ),
        Err(_) => "Total : -1, Free : -1.".into(),
    };
    vec![
        ("commitLogDiskRatio".into(), format!("{disk:.2}")),
        (
            format!("commitLogDiskRatio_{}", root.join("commitlog").display()),
            format!("{disk:.2}"),
        ),
        ("consumeQueueDiskRatio".into(), format!("{disk:.2}")),
        // rmq's own: a failed fsync makes the store refuse writes until a restart.
        ("storeWritable".into(), write_failure.is_none().to_string()),
        (
            "storeWriteFailure".into(),
            write_failure.unwrap_or_default(),
        ),
        ("commitLogMinOffset".into(), log_start.to_string()),
        ("commitLogMaxOffset".into(), log_end.to_string()),
        ("commitLogDirCapacity".into(), capacity),
    ]
}

/// Keys rmq has no figure for, with the values an idle Java broker reports, and the
/// thread-pool keys.
fn fixed_rows(s: &BrokerState) -> Vec<Row> {
    let mut t: Vec<Row> = vec![
        ("dispatchBehindBytes".into(), "0".into()),
        ("dispatchMaxBuffer".into(), "0".into()),
        ("putMessageDistributeTime".into(), "[<=0ms]:0 [0~10ms]:0 [10~50ms]:0 [50~100ms]:0 [100~200ms]:0 [200~500ms]:0 [500ms~1s]:0 [1~2s]:0 [2~3s]:0 [3~4s]:0 [4~5s]:0 [5~10s]:0 [10s~]:0 ".into()),
        ("putLatency99".into(), "0.0".into()),
        ("putLatency999".into(), "0.0".into()),
        ("pageCacheLockTimeMills".into(), "0".into()),
        ("earliestMessageTimeStamp".into(), s.boot_ms.to_string()),
        (
            "startAcceptSendRequestTimeStamp".into(),
            s.config().start_accept_send_request_time_stamp.to_string(),
        ),
        (
            "remainTransientStoreBufferNumbs".into(),
            i32::MAX.to_string(),
        ),
        ("remainHowManyDataToFlush".into(), "0 B".into()),
        ("timerReadBehind".into(), "0".into()),
        ("timerOffsetBehind".into(), "0".into()),
        ("timerCongestNum".into(), "0".into()),
        ("timerEnqueueTps".into(), "0.0".into()),
        ("timerDequeueTps".into(), "0.0".into()),
    ];
    for key in ["send", "pull", "litePull", "query", "ack"] {
        t.push((format!("{key}ThreadPoolQueueSize"), "0".into()));
        t.push((format!("{key}ThreadPoolQueueCapacity"), "10000".into()));
        t.push((format!("{key}ThreadPoolQueueHeadWaitTimeMills"), "0".into()));
    }
    t.push(("EndTransactionQueueSize".into(), "0".into()));
    t.push((
        "EndTransactionThreadPoolQueueCapacity".into(),
        "100000".into(),
    ));
    t
}

/// `scheduleMessageOffset_<level>` = `delivered,max` per delay level, in one trip to the
/// store thread.
async fn schedule_rows(s: &BrokerState) -> Vec<Row> {
    let levels = s.delay_offsets.all();
    let rows = s
        .store
        .run(move |st| {
            levels
                .into_iter()
                .map(|(level, offset)| {
                    (
                        level,
                        offset,
                        st.max_offset(rmq_store::store::SCHEDULE_TOPIC, level - 1),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    rows.into_iter()
        .map(|(level, offset, max)| {
            (
                format!("scheduleMessageOffset_{level}"),
                format!("{offset},{max}"),
            )
        })
        .collect()
}
