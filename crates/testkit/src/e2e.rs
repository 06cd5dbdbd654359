//! Third-party clients for end-to-end tests, installed on first use.
//!
//! The README promises one test command (`cargo test --workspace`) on a fresh clone, so the tests
//! that drive the npm `ali-ons` client install it themselves: `npm ci` in `tests-e2e/` (exact
//! versions from its lock file), once, under a file lock so that test binaries running in
//! parallel neither race nor install twice. A machine without node/npm gets an error naming them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest an `npm ci` may take before the test fails (a first install on a cold cache).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The `tests-e2e/` directory of this checkout.
pub fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests-e2e")
}

/// `tests-e2e/` with `node_modules/ali-ons` present, installing it first if needed.
///
/// Panics (failing the test) with what to do when node or npm is missing or the install fails.
pub fn ali_ons() -> PathBuf {
    let dir = e2e_dir();
    if let Err(e) = ensure_installed(&dir, "ali-ons") {
        panic!("cannot run the ali-ons end-to-end test: {e}");
    }
    dir
}

fn ensure_installed(dir: &Path, package: &str) -> Result<(), String> {
    let marker = dir.join("node_modules").join(package).join("package.json");
    if marker.is_file() {
        return Ok(());
    }
    let lock_path = dir.join(".install.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    // Whoever gets the lock first installs; the others wait for it and then find the package.
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if marker.is_file() {
        return Ok(());
    }
    check_tool("node")?;
    check_tool("npm")?;
    // npm's output goes to a file (a pipe nobody reads could fill and stall it).
    let log_path = dir.join(".npm-ci.log");
    let log = File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut child = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("npm ci failed to start: {e}"))?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`npm ci` in {} took more than {}s",
                    dir.display(),
                    INSTALL_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for npm ci: {e}")),
        }
    };
    if !status.success() {
        let err = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!(
            "`npm ci` in {} failed ({status}): {}",
            dir.display(),
            err.trim()
        ));
    }
    if !marker.is_file() {
        return Err(format!(
            "`npm ci` in {} did not install {package}",
            dir.display()
        ));
    }
    Ok(())
}

fn check_tool(tool: &str) -> Result<(), String> {
    match Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!(
            "`{tool}` is not on PATH: install Node.js 18+ with npm (Debian: `apt-get install nodejs npm`)"
        )),
    }
}
