//! What identifies one version of a file that stressd re-reads when it changes (token files,
//! TLS certificate and key): a swapped Kubernetes Secret symlink, a rename over the file or a
//! rewrite in place changes at least one of device, inode, length or modification time.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file version's identity; equal stamps mean "unchanged, no need to re-read".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    /// The stamp of already read metadata (follows symlinks if `meta` did).
    pub(crate) fn of_meta(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    /// The stamp of `path` now, following symlinks.
    pub(crate) fn of_path(path: &Path) -> std::io::Result<Self> {
        std::fs::metadata(path).map(|m| Self::of_meta(&m))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_rename_over_the_file_or_a_rewrite_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let a = FileStamp::of_path(&p).unwrap();
        assert_eq!(a, FileStamp::of_path(&p).unwrap());
        let q = dir.path().join("g");
        std::fs::write(&q, b"two").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert_ne!(a, FileStamp::of_path(&p).unwrap());
        assert!(FileStamp::of_path(&dir.path().join("missing")).is_err());
    }
}
