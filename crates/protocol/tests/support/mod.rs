//! Helpers shared by the protocol integration tests.

use std::path::PathBuf;

/// `../shared/vectors` beside the checkout (override with RMQ_SHARED_DIR=/path/to/shared).
///
/// Panics when it is missing: a conformance suite that silently skips is worse than none.
pub fn vectors_dir() -> PathBuf {
    let shared = std::env::var_os("RMQ_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("vectors");
    assert!(
        dir.is_dir(),
        "captured vectors not found at {} (set RMQ_SHARED_DIR to the shared/ folder)",
        dir.display()
    );
    dir
}

/// Lower-case hex, as the manifests write bodies.
#[allow(dead_code)]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
