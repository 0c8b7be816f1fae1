//! What happens to a file that cannot be used: skipped and reported (the default), or the first one
//! is an error (`--strict`). Never a panic, never a silent drop.
//!
//! The report is a tab-separated file, one line per skipped file: split, path, reason. Paths that
//! are not UTF-8 are written with U+FFFD in place of the bad bytes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::DataError;

/// `--strict` or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BadInputPolicy {
    /// Skip the file, record it in the report, go on.
    #[default]
    Skip,
    /// The first bad file is an error.
    Strict,
}

/// What the report says of a class folder without images.
pub const EMPTY_CLASS_REASON: &str = "empty class folder (no images)";

/// One file left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

impl SkippedFile {
    pub fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_string_lossy().into_owned(),
            reason: reason.into(),
        }
    }

    /// The skip a per-file error stands for; `None` for errors that are not about one input
    /// (a missing dataset directory, a crop too large), which stop the work under any policy.
    pub fn from_error(error: &DataError) -> Option<Self> {
        match error {
            DataError::Unreadable { path, reason } => {
                Some(Self::new(path, format!("cannot read: {reason}")))
            }
            DataError::Undecodable { path, reason } => Some(Self::new(path, reason.clone())),
            DataError::EmptyClass(path) => Some(Self::new(path, EMPTY_CLASS_REASON)),
            _ => None,
        }
    }
}

impl BadInputPolicy {
    /// The policy a `--strict` flag (or `data.strict`) asks for.
    pub fn strict_if(strict: bool) -> Self {
        if strict { Self::Strict } else { Self::Skip }
    }

    /// Applies the policy to one file's result: `Ok(Some(value))` to use, `Ok(None)` skipped (and
    /// pushed onto `skipped`), or the error itself under `Strict` or when it is not about one file.
    pub fn handle<T>(
        self,
        result: Result<T, DataError>,
        skipped: &mut Vec<SkippedFile>,
    ) -> Result<Option<T>, DataError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) => match (self, SkippedFile::from_error(&error)) {
                (BadInputPolicy::Skip, Some(skip)) => {
                    skipped.push(skip);
                    Ok(None)
                }
                _ => Err(error),
            },
        }
    }
}

/// What to print of a list of skipped files: `path: reason` for the first `limit`, then a line
/// saying how many more there are.
pub fn skipped_lines(skipped: &[SkippedFile], limit: usize) -> Vec<String> {
    let mut lines: Vec<String> = skipped
        .iter()
        .take(limit)
        .map(|s| format!("{}: {}", s.path, s.reason))
        .collect();
    if skipped.len() > limit {
        lines.push(format!("... and {} more", skipped.len() - limit));
    }
    lines
}

/// Writes `report` (split, path, reason per line, with a header) to `path` atomically, so an
/// interrupted write never leaves a half report behind.
pub fn write_report(path: &Path, rows: &[(String, SkippedFile)]) -> Result<(), DataError> {
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    let mut text = String::from("split\tpath\treason\n");
    for (split, skip) in rows {
        text += &format!("{split}\t{}\t{}\n", clean(&skip.path), clean(&skip.reason));
    }
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_records_and_strict_fails() {
        let bad = || {
            Err::<u8, _>(DataError::Undecodable {
                path: "a/b.jpg".into(),
                reason: "empty file (0 bytes)".into(),
            })
        };
        let mut skipped = Vec::new();
        assert_eq!(
            BadInputPolicy::Skip.handle(Ok(3), &mut skipped).unwrap(),
            Some(3)
        );
        assert_eq!(
            BadInputPolicy::Skip.handle(bad(), &mut skipped).unwrap(),
            None
        );
        assert_eq!(
            skipped,
            vec![SkippedFile::new(
                Path::new("a/b.jpg"),
                "empty file (0 bytes)"
            )]
        );
        let err = BadInputPolicy::Strict
            .handle(bad(), &mut skipped)
            .unwrap_err();
        assert!(err.to_string().contains("a/b.jpg"), "{err}");
        assert_eq!(skipped.len(), 1, "strict adds nothing to the report");
        // An error about the whole data set is never skipped.
        let missing = Err::<u8, _>(DataError::MissingDir("nowhere".into()));
        assert!(BadInputPolicy::Skip.handle(missing, &mut skipped).is_err());
        // Printed: the first ones, then a count of the rest.
        let many = vec![skipped[0].clone(); 3];
        assert_eq!(
            skipped_lines(&many, 2),
            vec![
                "a/b.jpg: empty file (0 bytes)",
                "a/b.jpg: empty file (0 bytes)",
                "... and 1 more"
            ]
        );
    }
}
