//! Per-epoch metrics, one JSON object per line in `metrics.jsonl` (appended, never rewritten).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: u64,
    /// Learning rate used during the epoch.
    pub lr: f64,
    pub train_loss: f64,
    /// Top-1 error on the augmented training batches, as they were trained on.
    pub train_top1_error: f64,
    pub val_top1_error: f64,
    pub val_top5_error: f64,
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
