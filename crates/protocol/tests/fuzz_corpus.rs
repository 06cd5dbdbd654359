//! Replays the cargo-fuzz corpus (fuzz/corpus/frame_decoder) through the same entry point as the
//! fuzz target, so CI checks every input the fuzzer ever kept without needing a nightly toolchain.

#[test]
fn replay_fuzz_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frame_decoder");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        rmq_protocol::frame::fuzz_decode_all(&data);
        n += 1;
    }
    assert!(n >= 6, "corpus has only {n} inputs");
}
