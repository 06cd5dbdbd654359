//! The one place the store makes bytes durable. Every fsync of a store file (commit-log
//! segments, consume-queue files, index files, the checkpoint, the abort marker) and of a
//! store directory (so that a new file's name survives a power loss) goes through
//! [`sync_file`], [`sync_map`] or [`sync_dir`]: what is durable is decided here, nowhere else.
//!
//! With the `crash-sim` feature (tests only) each call is shown to an observer first, which may
//! fail it. The power-loss tests use that to keep exactly what a successful sync covered and to
//! make a sync fail on purpose; without the feature the functions are the plain system calls.

use std::fs::File;
use std::path::Path;

/// `fdatasync` of `file` (at `path`, named for the crash simulation).
pub(crate) fn sync_file(file: &File, path: &Path) -> std::io::Result<()> {
    durably(path, || file.sync_data())
}

/// `msync` of a writable map of the file at `path` (`range`: the whole map when `None`).
pub(crate) fn sync_map(
    map: &memmap2::MmapMut,
    path: &Path,
    range: Option<(usize, usize)>,
) -> std::io::Result<()> {
    durably(path, || match range {
        None => map.flush(),
        Some((from, len)) => map.flush_range(from, len),
    })
}

/// Fsync of the directory `dir`: the names created or removed in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    durably(dir, || File::open(dir)?.sync_all())
}

/// Runs the sync `sync` of `path`, shown to the crash simulation's observer before (which may
/// fail it) and after.
fn durably(path: &Path, sync: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    #[cfg(feature = "crash-sim")]
    sim::before(path)?;
    sync()?;
    #[cfg(feature = "crash-sim")]
    sim::after(path);
    let _ = path;
    Ok(())
}

/// Creates `dir` and any missing parent, syncing the directory each new one was created in,
/// so the new directories survive a power loss (a file synced inside a directory whose own
/// name was never synced can vanish with it).
pub(crate) fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// The crash simulation's view of durability calls (feature `crash-sim`).
#[cfg(feature = "crash-sim")]
pub mod sim {
    use std::path::Path;
    use std::sync::{Arc, RwLock};

    /// Sees every durability call of every store in the process. Observers filter by path
    /// (a test's temp directory) themselves.
    pub trait Observer: Send + Sync {
        /// Before a file or directory at `path` is synced; an error fails the sync, which then
        /// does not happen.
        fn before_sync(&self, path: &Path) -> std::io::Result<()>;
        /// After a successful sync of `path`: what it holds now is durable.
        fn synced(&self, path: &Path);
    }

    static OBSERVER: RwLock<Option<Arc<dyn Observer>>> = RwLock::new(None);

    /// Installs (or with `None` removes) the process's observer.
    pub fn set_observer(observer: Option<Arc<dyn Observer>>) {
        *OBSERVER.write().unwrap_or_else(|p| p.into_inner()) = observer;
    }

    fn current() -> Option<Arc<dyn Observer>> {
        OBSERVER.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn before(path: &Path) -> std::io::Result<()> {
        match current() {
            Some(o) => o.before_sync(path),
            None => Ok(()),
        }
    }

    pub(super) fn after(path: &Path) {
        if let Some(o) = current() {
            o.synced(path);
        }
    }
}
