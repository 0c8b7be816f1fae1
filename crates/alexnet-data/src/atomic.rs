//! Files that are either whole or absent: written to `<path>.tmp`, synced, and renamed over
//! `path`, so a reader (or a re-run after a crash) sees the old file or the new one, never half.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let write_error = |e: std::io::Error| DataError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let temporary = PathBuf::from(format!("{}.tmp", path.display()));
    let mut file = std::fs::File::create(&temporary).map_err(write_error)?;
    file.write_all(bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(write_error)
}
