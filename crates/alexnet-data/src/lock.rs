//! One writer per directory: `train` holds its run directory, `prepare` its OUT, for the life of
//! the process. The lock is the operating system's (`flock` on `<dir>/.lock`), so the kernel
//! releases it when the process ends however it ends: a crashed run never leaves a stale lock,
//! and a second writer is told at once which process holds the directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::atomic::remove_temporaries;
use crate::error::DataError;

/// The lock file's name inside a locked directory.
pub const LOCK_FILE: &str = ".lock";

/// Held while the directory is ours; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    dir: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock, or says which process holds it. Temporary files
    /// that an earlier writer left when it crashed are removed once the lock is ours.
    pub fn acquire(dir: &Path, what: &'static str) -> Result<Self, DataError> {
        let write_error = |e: std::io::Error| DataError::Write {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(write_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let (pid, command) = holder
                    .trim()
                    .split_once(' ')
                    .unwrap_or((holder.trim(), what));
                return Err(DataError::Locked {
                    dir: dir.to_path_buf(),
                    pid: pid.to_string(),
                    command: command.to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(write_error(e)),
        }
        // Ours now: say who holds it, for the next one who asks.
        let pid = std::process::id();
        (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{pid} {what}")?;
            file.sync_data()
        })()
        .map_err(write_error)?;
        remove_temporaries(dir);
        Ok(Self {
            _file: file,
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("alexnet-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("last.safetensors.1-0.tmp"), b"left by a crash").unwrap();
        let first = DirLock::acquire(&dir, "train").unwrap();
        assert!(
            !dir.join("last.safetensors.1-0.tmp").exists(),
            "a crash's leftovers are removed"
        );
        // flock locks belong to the open file: a second open in this process is a second writer.
        let err = DirLock::acquire(&dir, "train").unwrap_err().to_string();
        let pid = std::process::id().to_string();
        assert!(
            err.contains(&pid) && err.contains(dir.to_str().unwrap()),
            "{err}"
        );
        drop(first);
        let again = DirLock::acquire(&dir, "prepare").unwrap();
        assert_eq!(again.dir(), dir.as_path());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
