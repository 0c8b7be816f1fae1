//! Files that are either whole or absent: written to a temporary file of a name no other writer
//! uses (`<path>.<pid>-<n>.tmp`), synced, and renamed over `path`, so a reader (or a re-run after
//! a crash) sees the old file or the new one, never half, and two writers never tear each other's
//! temporary file. A write that fails removes its temporary file; one left by a crash is removed by
//! [`remove_temporaries`] when the next writer takes the directory's lock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::DataError;

/// The suffix every temporary file ends with.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A name beside `path` that no other write, in this process or another, is using.
pub fn temporary_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!(
        "{}.{}-{n}{TEMPORARY_SUFFIX}",
        path.display(),
        std::process::id()
    ))
}

/// Writes `bytes` to `path` atomically. A failed write (a full disk) removes its temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    StagedFile::write(path, bytes)?.commit()
}

/// A file written and synced under a temporary name, not yet visible under its own: what lets a
/// writer make several files visible in the order it chooses (the trainer links `best` to an
/// epoch's checkpoint before that checkpoint becomes `last`). Dropped uncommitted, it is removed.
#[derive(Debug)]
pub struct StagedFile {
    path: PathBuf,
    temporary: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Writes and syncs `bytes` beside `path`.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<Self, DataError> {
        let staged = Self {
            path: path.to_path_buf(),
            temporary: temporary_name(path),
            committed: false,
        };
        (|| {
            let mut file = std::fs::File::create(&staged.temporary)?;
            file.write_all(bytes)?;
            file.sync_all()
        })()
        .map_err(write_error(path))?;
        Ok(staged)
    }

    /// Makes `to` this file's contents now, before it is committed (see [`link_atomic`]).
    pub fn link_to(&self, to: &Path) -> Result<(), DataError> {
        link_atomic(&self.temporary, to)
    }

    /// Renames the file to its own name.
    pub fn commit(mut self) -> Result<(), DataError> {
        std::fs::rename(&self.temporary, &self.path).map_err(write_error(&self.path))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Makes `to` the same file as the finished file `from`, atomically: a hard link (no copy; a
/// later rename over `from` leaves `to` as it was) where the filesystem allows, else a synced copy.
pub fn link_atomic(from: &Path, to: &Path) -> Result<(), DataError> {
    let temporary = temporary_name(to);
    let result = (|| {
        if std::fs::hard_link(from, &temporary).is_err() {
            std::fs::copy(from, &temporary)?;
            std::fs::File::open(&temporary)?.sync_all()?;
        }
        std::fs::rename(&temporary, to)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(write_error(to))
}

/// Removes the temporary files a crashed writer left in `dir` (not in its subdirectories), and
/// says how many. Only for a directory whose lock the caller holds: no other writer is at work.
pub fn remove_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .ends_with(TEMPORARY_SUFFIX)
                && entry.file_type().is_ok_and(|t| t.is_file())
        })
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporaries_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(TEMPORARY_SUFFIX))
            .collect()
    }

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
        assert!(temporaries_in(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_writers_never_tear_a_file_and_crash_leftovers_are_removed() {
        let dir = std::env::temp_dir().join(format!("alexnet-atomic-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shared");
        // Two writers of different, long contents: whichever wins, the file is one of them whole.
        let writers: Vec<_> = [b'a', b'b']
            .into_iter()
            .map(|byte| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        write_atomic(&path, &vec![byte; 1 << 20]).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..20 {
            if let Ok(bytes) = std::fs::read(&path) {
                assert_eq!(bytes.len(), 1 << 20);
                assert!(bytes.iter().all(|&b| b == bytes[0]), "a torn file");
            }
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert_ne!(temporary_name(&path), temporary_name(&path), "unique names");

        // What a crash mid-write leaves: removed at the next start, the finished file kept.
        std::fs::write(temporary_name(&path), b"half").unwrap();
        std::fs::write(dir.join("shard-00001.ash.77-0.tmp"), b"half").unwrap();
        assert_eq!(remove_temporaries(&dir), 2);
        assert!(temporaries_in(&dir).is_empty());
        assert!(path.exists());

        // A write that fails (its directory is gone) leaves no temporary file behind.
        let missing = dir.join("no-such-dir").join("file");
        assert!(write_atomic(&missing, b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
