//! Files that are either whole or absent: written to `<path>.tmp`, synced, and renamed over
//! `path`, so a reader (or a re-run after a crash) sees the old file or the new one, never half.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::DataError;

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn temporary_name(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.tmp", path.display()))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let write_error = write_error(path);
    let temporary = temporary_name(path);
    let mut file = std::fs::File::create(&temporary).map_err(&write_error)?;
    file.write_all(bytes).map_err(&write_error)?;
    file.sync_all().map_err(&write_error)?;
    std::fs::rename(&temporary, path).map_err(write_error)
}

/// Makes `to` the same file as the finished file `from`, atomically: a hard link (no copy; a
/// later rename over `from` leaves `to` as it was) where the filesystem allows, else a synced copy.
pub fn link_atomic(from: &Path, to: &Path) -> Result<(), DataError> {
    let write_error = write_error(to);
    let temporary = temporary_name(to);
    let _ = std::fs::remove_file(&temporary);
    if std::fs::hard_link(from, &temporary).is_err() {
        std::fs::copy(from, &temporary).map_err(&write_error)?;
        std::fs::File::open(&temporary)
            .and_then(|file| file.sync_all())
            .map_err(&write_error)?;
    }
    std::fs::rename(&temporary, to).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_keeps_the_old_contents_when_the_original_is_replaced() {
        let dir = std::env::temp_dir().join(format!("alexnet-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (last, best) = (dir.join("last"), dir.join("best"));
        write_atomic(&last, b"epoch 1").unwrap();
        link_atomic(&last, &best).unwrap();
        write_atomic(&last, b"epoch 2").unwrap();
        assert_eq!(std::fs::read(&best).unwrap(), b"epoch 1");
        assert_eq!(std::fs::read(&last).unwrap(), b"epoch 2");
        link_atomic(&last, &best).unwrap();
        assert_eq!(std::fs::read(&best).unwrap(), b"epoch 2");
        assert!(!temporary_name(&best).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
