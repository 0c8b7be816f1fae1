//! Per-epoch metrics, one JSON object per line in `metrics.jsonl`: appended after each epoch, and
//! cut back to the checkpoint's epoch when a run resumes (a crash after an epoch's line was written
//! but before its checkpoint was leaves a line the resumed run writes again).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: u64,
    /// Learning rate used during the epoch (for a rate set at every step, its last step's).
    pub lr: f64,
    pub train_loss: f64,
    /// Top-1 error on the augmented training batches, as they were trained on.
    pub train_top1_error: f64,
    /// `None` (`null`) for an epoch not validated (`run.validate_every`).
    pub val_top1_error: Option<f64>,
    pub val_top5_error: Option<f64>,
    /// Training images per second over the epoch (forward, backward, update).
    pub images_per_second: f64,
    pub epoch_seconds: f64,
    /// Wall time of the run so far, across resumes.
    pub wall_seconds: f64,
}

pub fn append(path: &Path, metrics: &EpochMetrics) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(
        file,
        "{}",
        serde_json::to_string(metrics).expect("metrics serialize")
    )?;
    file.sync_data()
}

/// Keeps only the lines of epochs up to `epochs_done` (and no half-written last line), so that the
/// resumed run writes each later epoch's line once. Returns how many lines it removed; the file is
/// rewritten atomically, and only when something is removed.
pub fn keep_epochs_up_to(path: &Path, epochs_done: usize) -> std::io::Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut kept = String::new();
    let mut removed = 0;
    for line in text.split_inclusive('\n') {
        let epoch = serde_json::from_str::<EpochMetrics>(line.trim_end()).map(|m| m.epoch);
        match epoch {
            Ok(epoch) if epoch <= epochs_done && line.ends_with('\n') => kept.push_str(line),
            _ if line.trim().is_empty() => {}
            _ => removed += 1,
        }
    }
    if removed > 0 {
        alexnet_data::write_atomic(path, kept.as_bytes()).map_err(std::io::Error::other)?;
    }
    Ok(removed)
}

/// The epochs recorded in `path`, in epoch order. A last line without its newline is a line
/// still being written (the run is training) and is left out; any other unreadable line is an
/// error naming its line number. Should an epoch appear twice, its later line counts.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let mut by_epoch = std::collections::BTreeMap::new();
    for (number, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let metrics: EpochMetrics = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not an epoch's metrics: {e}", number + 1))?;
        by_epoch.insert(metrics.epoch, metrics);
    }
    Ok(by_epoch.into_values().collect())
}

/// The last epoch of `epochs` that was validated, and its top-1 and top-5 errors.
pub fn last_validated(epochs: &[EpochMetrics]) -> Option<(&EpochMetrics, [f64; 2])> {
    epochs.iter().rev().find_map(|m| Some((m, m.val_errors()?)))
}

impl EpochMetrics {
    /// Top-1 and top-5 validation error, where the epoch was validated.
    pub fn val_errors(&self) -> Option<[f64; 2]> {
        Some([self.val_top1_error?, self.val_top5_error?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, val_top1_error: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            step: 10 * epoch as u64,
            lr: 0.01,
            train_loss: 1.0,
            train_top1_error: 0.5,
            val_top1_error: Some(val_top1_error),
            val_top5_error: Some(0.1),
            images_per_second: 50.0,
            epoch_seconds: 3.0,
            wall_seconds: 3.0 * epoch as f64,
        }
    }

    #[test]
    fn metrics_are_read_back_in_order_without_a_half_written_line() {
        let dir = std::env::temp_dir().join(format!("alexnet-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        for e in [epoch(1, 0.5), epoch(2, 0.4)] {
            append(&path, &e).unwrap();
        }
        // A line being written by a run still training: no newline yet.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"epoch\": 3, \"st");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(
            read_metrics(&path).unwrap(),
            vec![epoch(1, 0.5), epoch(2, 0.4)]
        );

        // A broken line in the middle is an error with its number.
        std::fs::write(&path, text.replace("{\"epoch\": 3, \"st", "garbage\n")).unwrap();
        let err = read_metrics(&path).unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");

        // A resume from the checkpoint of epoch 1 drops what came after it, and only that.
        append(&path, &epoch(3, 0.3)).unwrap();
        assert_eq!(keep_epochs_up_to(&path, 1).unwrap(), 3);
        assert_eq!(read_metrics(&path).unwrap(), vec![epoch(1, 0.5)]);
        assert_eq!(keep_epochs_up_to(&path, 1).unwrap(), 0);
        assert_eq!(keep_epochs_up_to(&dir.join("none.jsonl"), 1).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_epoch_not_validated_is_null_and_is_skipped_for_the_last_validated() {
        let dir = std::env::temp_dir().join(format!("alexnet-metrics-null-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let skipped = EpochMetrics {
            val_top1_error: None,
            val_top5_error: None,
            ..epoch(2, 0.0)
        };
        for e in [epoch(1, 0.5), skipped.clone()] {
            append(&path, &e).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"val_top1_error\":null"), "{text}");
        let read = read_metrics(&path).unwrap();
        assert_eq!(read[1], skipped);
        let (last, errors) = last_validated(&read).unwrap();
        assert_eq!((last.epoch, errors), (1, [0.5, 0.1]));
        assert!(last_validated(&read[1..]).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
