//! A client-chosen commit-log offset never sizes an allocation (issue 28). VIEW_MESSAGE_BY_ID
//! (and CONSUMER_SEND_MSG_BACK) take an offset from the client; the store used to size its read
//! buffer from the four bytes found there, up to the log's end. Alone in its test binary: it
//! measures the process's peak RSS.

mod support;

use rmq_protocol::codes::{request, response};
use rmq_protocol::RemotingCommand;

/// The process's peak resident memory (KiB) since the last reset.
fn peak_rss_kib() -> u64 {
    support::proc_status_kib("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_message_at_a_crafted_offset_is_not_found_without_a_large_allocation() {
    let sa = support::Standalone::start(|c| c.mapped_file_size_commit_log = 256 << 20).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "Big", 1).await;
    // Inside the first body: bytes that read as a record header of 2 GiB with a valid magic.
    let mut crafted = vec![b'x'; 3 << 20];
    let mut header = 0x7FFF_FFF0i32.to_be_bytes().to_vec();
    header.extend_from_slice(&rmq_store::record::MAGIC_V2.to_be_bytes());
    crafted[1000..1008].copy_from_slice(&header);
    let crafted = bytes::Bytes::from(crafted);
    let filler = bytes::Bytes::from(vec![b'y'; 3 << 20]);
    for i in 0..20 {
        let body = if i == 0 {
            crafted.clone()
        } else {
            filler.clone()
        };
        let req = support::send_request("Big", 0, "", &[]).with_body(body);
        let r = support::call(&c, &addr, req).await;
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    }
    // Where the crafted bytes landed: the first record's offset plus their place in it.
    let pulled = support::call(&c, &addr, support::pull_request("CG_big", "Big", 0, 0, 0)).await;
    let first = &support::records(&pulled.body)[0];
    let raw = {
        let r = support::call(
            &c,
            &addr,
            RemotingCommand::request(request::VIEW_MESSAGE_BY_ID)
                .with_ext("offset", first.physical_offset.to_string()),
        )
        .await;
        assert_eq!(r.code, response::SUCCESS);
        r.body
    };
    let at = raw
        .windows(header.len())
        .position(|w| w == header.as_slice())
        .expect("the crafted bytes are in the record");
    let target = first.physical_offset + at as i64;

    // Peak RSS from here (Linux: writing 5 to clear_refs resets VmHWM).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_kib();
    let r = support::call(
        &c,
        &addr,
        RemotingCommand::request(request::VIEW_MESSAGE_BY_ID)
            .with_ext("offset", target.to_string()),
    )
    .await;
    let grew = peak_rss_kib().saturating_sub(before);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(
        r.remark_str()
            .unwrap_or_default()
            .contains("can not find message"),
        "{:?}",
        r.remark_str()
    );
    eprintln!("peak RSS grew {grew} KiB for the crafted read (the log holds 60 MiB after it)");
    assert!(
        grew < 16 * 1024,
        "peak RSS grew {grew} KiB for one crafted read"
    );
}
