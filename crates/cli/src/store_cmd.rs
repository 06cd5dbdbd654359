//! `rmq store inspect DIR` and `rmq store verify DIR`: read-only looks at any store directory,
//! ours or a Java broker's (no lock taken, nothing written).

use crate::admin::{print_json, Table};
use clap::Subcommand;
use rmq_store::inspect;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `rmq store` does.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Summary: segments, commit-log range, queues with min/max offsets, checkpoint, whether
    /// the last stop was clean, topics, groups, consumer offsets, files rmq does not implement.
    Inspect {
        /// The store directory (storePathRootDir).
        dir: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Every record's sizes, magic, body CRC and position; every consume queue dense (no
    /// placeholder, zero entry or hole between its first and last entry) and every entry
    /// against its record; damaged entries summarised per queue as offset ranges; exit 1 when
    /// damage is found.
    Verify {
        /// The store directory (storePathRootDir).
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A config file of the broker's (`config/<name>`, else its `.bak`), leniently parsed
/// (fastjson's unquoted integer keys).
fn config_json(dir: &Path, name: &str) -> Option<serde_json::Value> {
    let base = dir.join("config").join(name);
    [base.clone(), base.with_extension("json.bak")]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| !b.is_empty())
        .find_map(|b| rmq_protocol::lenient_json::parse(&b).ok())
}

fn ms_text(ms: i64) -> String {
    crate::admin::brokers::ms_text(ms)
}

/// Runs `rmq store ...`.
pub fn run(cmd: StoreCommand) -> ExitCode {
    match cmd {
        StoreCommand::Inspect { dir, json } => inspect_cmd(&dir, json),
        StoreCommand::Verify { dir, json } => verify_cmd(&dir, json),
    }
}

fn not_a_store(dir: &Path) -> Option<ExitCode> {
    if dir.join("commitlog").is_dir() || dir.join("consumequeue").is_dir() {
        return None;
    }
    eprintln!(
        "error: {}: not a store directory (no commitlog/ or consumequeue/)",
        dir.display()
    );
    Some(ExitCode::from(crate::admin::exit::NOT_FOUND))
}

fn inspect_cmd(dir: &Path, json: bool) -> ExitCode {
    if let Some(code) = not_a_store(dir) {
        return code;
    }
    let s = match inspect::inspect(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(crate::admin::exit::REFUSED);
        }
    };
    let l = &s.layout;
    let topics = config_json(dir, "topics.json");
    let groups = config_json(dir, "subscriptionGroup.json");
    let offsets = config_json(dir, "consumerOffset.json");
    let delay = config_json(dir, "delayOffset.json");
    let topic_names: Vec<String> = topics
        .as_ref()
        .and_then(|t| t["topicConfigTable"].as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let group_names: Vec<String> = groups
        .as_ref()
        .and_then(|g| g["subscriptionGroupTable"].as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    // (group, topic, queue, offset)
    let mut committed: Vec<(String, String, String, i64)> = Vec::new();
    if let Some(table) = offsets.as_ref().and_then(|o| o["offsetTable"].as_object()) {
        for (key, queues) in table {
            let Some((topic, group)) = key.rsplit_once('@') else {
                continue;
            };
            if let Some(queues) = queues.as_object() {
                for (q, o) in queues {
                    committed.push((
                        group.to_owned(),
                        topic.to_owned(),
                        q.clone(),
                        o.as_i64().unwrap_or(-1),
                    ));
                }
            }
        }
    }
    committed.sort();
    if json {
        let cp = l.checkpoint.map(|c| {
            serde_json::json!({"physicMsgTimestamp": c.physic_ms, "logicsMsgTimestamp": c.logics_ms,
                "indexMsgTimestamp": c.index_ms, "masterFlushedOffset": c.master_flushed_offset,
                "confirmPhyOffset": c.confirm_phy_offset})
        });
        let queues: Vec<_> = s
            .queues
            .iter()
            .map(|q| serde_json::json!({"topic": q.topic, "queueId": q.queue_id, "minOffset": q.min_offset, "maxOffset": q.max_offset}))
            .collect();
        let offsets: Vec<_> = committed
            .iter()
            .map(|(g, t, q, o)| serde_json::json!({"group": g, "topic": t, "queueId": q, "offset": o}))
            .collect();
        print_json(&serde_json::json!({
            "dir": dir.display().to_string(),
            "cleanStop": l.clean_stop,
            "checkpoint": cp,
            "commitLog": {"segments": l.segments.len(), "segmentSize": l.commit_log_segment_size,
                "minOffset": s.log_start, "maxOffset": s.log_end},
            "consumeQueueFileSize": l.consume_queue_file_size,
            "indexFiles": l.index_files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "queues": queues,
            "topics": topic_names,
            "groups": group_names,
            "consumerOffsets": offsets,
            "delayOffsets": delay.as_ref().map(|d| d["offsetTable"].clone()),
            "timerFiles": l.timer_files,
            "unsupported": l.foreign.iter().map(|f| serde_json::json!({"path": f.path.display().to_string(), "setting": f.setting, "what": f.what})).collect::<Vec<_>>(),
        }));
        return ExitCode::SUCCESS;
    }
    println!("store {}", dir.display());
    println!(
        "last stop: {}",
        if l.clean_stop {
            "clean"
        } else {
            "crashed (abort marker present): recovery will check the tail"
        }
    );
    match l.checkpoint {
        Some(c) => println!(
            "checkpoint: physic {} · logics {} · index {} · confirmPhyOffset {}",
            ms_text(c.physic_ms),
            ms_text(c.logics_ms),
            ms_text(c.index_ms),
            c.confirm_phy_offset
        ),
        None => println!("checkpoint: none"),
    }
    println!(
        "commit log: {} segment(s) of {} bytes, offsets {}..{} ({} bytes of records)",
        l.segments.len(),
        l.commit_log_segment_size
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        s.log_start,
        s.log_end,
        s.log_end - s.log_start
    );
    println!(
        "consume queues: {} queue(s), files of {} bytes; index: {} file(s)",
        s.queues.len(),
        l.consume_queue_file_size
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        l.index_files.len()
    );
    let mut t = Table::new(&["TOPIC", "QUEUE", "MIN_OFFSET", "MAX_OFFSET"]);
    for q in &s.queues {
        t.row(vec![
            q.topic.clone(),
            q.queue_id.to_string(),
            q.min_offset.to_string(),
            q.max_offset.to_string(),
        ]);
    }
    print!("{t}");
    println!("topics ({}): {}", topic_names.len(), topic_names.join(", "));
    println!("groups ({}): {}", group_names.len(), group_names.join(", "));
    if !committed.is_empty() {
        let mut t = Table::new(&["GROUP", "TOPIC", "QUEUE", "COMMITTED_OFFSET"]);
        for (g, tp, q, o) in committed {
            t.row(vec![g, tp, q, o.to_string()]);
        }
        print!("{t}");
    }
    if let Some(d) = delay.as_ref().and_then(|d| d["offsetTable"].as_object()) {
        let levels: Vec<String> = d.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        println!("delay offsets (level:next): {}", levels.join(" "));
    }
    if l.timer_files {
        println!("timer wheel files: present");
    }
    for f in &l.foreign {
        println!("unsupported: {f}");
    }
    ExitCode::SUCCESS
}

fn verify_cmd(dir: &Path, json: bool) -> ExitCode {
    if let Some(code) = not_a_store(dir) {
        return code;
    }
    let r = match inspect::verify(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(crate::admin::exit::REFUSED);
        }
    };
    if json {
        let damage: Vec<_> = r
            .damage
            .iter()
            .map(|d| {
                serde_json::json!({"topic": d.topic, "queueId": d.queue_id, "fault": d.fault.name(),
                    "what": d.fault.what(), "entries": d.entries, "ranges": d.ranges,
                    "moreRanges": d.more_ranges, "example": d.example})
            })
            .collect();
        print_json(&serde_json::json!({
            "records": r.records, "logEnd": r.log_end, "queues": r.queues, "entries": r.entries,
            "problems": r.problems, "notes": r.notes, "ok": r.problems.is_empty(),
            "problemCount": r.problem_count, "expiredEntries": r.expired,
            "damagedEntries": r.damaged_entries(), "damage": damage,
        }));
    } else {
        println!(
            "{} record(s) checked (commit log valid to {}), {} consume-queue entr(ies) in {} queue(s){}",
            r.records,
            r.log_end,
            r.entries,
            r.queues,
            if r.expired > 0 {
                format!(" ({} more point into deleted segments)", r.expired)
            } else {
                String::new()
            }
        );
        for n in &r.notes {
            println!("note: {n}");
        }
        for p in &r.problems {
            println!("PROBLEM: {p}");
        }
        let unlisted = r.problem_count.saturating_sub(r.problems.len() as u64);
        if unlisted > 0 {
            println!("PROBLEM: {unlisted} more not listed (--json lists every damaged queue)");
        }
        if !r.damage.is_empty() {
            println!(
                "{} damaged consume-queue entr(ies) in {} queue(s)",
                r.damaged_entries(),
                r.damage
                    .iter()
                    .map(|d| (&d.topic, d.queue_id))
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            );
        }
        println!(
            "{}",
            if r.problems.is_empty() {
                "OK"
            } else {
                "DAMAGED"
            }
        );
    }
    if r.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::admin::exit::REFUSED)
    }
}
