//! A directory filled in under a temporary name and renamed into place, so that `--out` holds
//! either the previous report or the new one, never half of one.

use std::path::{Path, PathBuf};

use crate::error::ReportError;

/// A directory filled in and then renamed to its final name; removed if dropped unpublished.
pub struct Staging {
    pub dir: PathBuf,
    /// Where the directory goes when it is published.
    out: PathBuf,
    published: bool,
}

impl Staging {
    pub fn new(out: &Path) -> Result<Self, ReportError> {
        let dir = beside(out, "tmp");
        let write_error = |e: std::io::Error| ReportError::Write {
            path: dir.clone(),
            reason: e.to_string(),
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(write_error)?;
        }
        std::fs::create_dir_all(&dir).map_err(write_error)?;
        Ok(Self {
            dir,
            out: out.to_path_buf(),
            published: false,
        })
    }

    /// Renames the directory to its final name, replacing a previous report there.
    pub fn publish(mut self) -> Result<(), ReportError> {
        let out = self.out.clone();
        let write_error = |e: std::io::Error| ReportError::Write {
            path: out.clone(),
            reason: e.to_string(),
        };
        let old = beside(&out, "old");
        let replaced = out.exists();
        if replaced {
            std::fs::rename(&out, &old).map_err(write_error)?;
        }
        std::fs::rename(&self.dir, &out).map_err(write_error)?;
        self.published = true;
        if replaced {
            std::fs::remove_dir_all(&old).map_err(write_error)?;
        }
        Ok(())
    }
}

/// A hidden name beside `out` for this process: `.NAME.WHAT-PID`.
fn beside(out: &Path, what: &str) -> PathBuf {
    let name = out
        .file_name()
        .map_or("report".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
