//! One pass over a split: top-1/top-5 error, per-class accuracy and the confusion matrix.

use alexnet_data::{BatchLoader, DataError};
use alexnet_model::AlexNet;
use burn::tensor::Device;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::predictions::ensemble_probabilities;
use crate::topk::top_k;

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub images: usize,
    pub top1_error: f64,
    pub top5_error: f64,
    /// The counts behind the two errors (what data-parallel ranks add up).
    #[serde(skip)]
    pub top1_misses: usize,
    #[serde(skip)]
    pub top5_misses: usize,
    pub class_names: Vec<String>,
    /// Fraction of each class's images whose most probable class is right.
    pub per_class_accuracy: Vec<f64>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Every image's label and most probable classes, in the split's order (not in `--json`: for
    /// ImageNet's 50,000 validation images it would be most of the file).
    #[serde(skip)]
    pub outcomes: Vec<ImageOutcome>,
}

/// What the network made of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageOutcome {
    /// Position in the split.
    pub index: usize,
    pub label: usize,
    /// The five (or, with fewer classes, all) most probable classes, most probable first, with
    /// their probabilities.
    pub top: Vec<(usize, f32)>,
}

impl ImageOutcome {
    pub fn is_right(&self) -> bool {
        self.top
            .first()
            .is_some_and(|&(class, _)| class == self.label)
    }
}

/// Evaluates an ensemble (one model is an ensemble of one; each in evaluation mode, each with a
/// loader over the same split prepared with its own training statistics) on every batch; the
/// loaders' view plan decides centre crop or 10-crop.
pub fn evaluate(
    members: &[(AlexNet, BatchLoader)],
    device: &Device,
    progress: &ProgressBar,
) -> Result<EvalReport, DataError> {
    let loader = &members[0].1;
    let class_names = loader.set.class_names().to_vec();
    let classes = class_names.len();
    let k5 = classes.min(5);
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut top1_misses, mut top5_misses, mut images) = (0usize, 0usize, 0usize);
    let mut outcomes = Vec::with_capacity(loader.set.len());
    progress.set_length(loader.set.len() as u64);
    let mut streams: Vec<_> = members
        .iter()
        .map(|(_, l)| l.epoch(0, 0).into_iter())
        .collect();
    while let Some(batches) = streams
        .iter_mut()
        .map(Iterator::next)
        .collect::<Option<Vec<_>>>()
    {
        let batches = batches.into_iter().collect::<Result<Vec<_>, _>>()?;
        if batches[0].is_empty() {
            continue; // a data-parallel rank's share of a short last batch
        }
        let pairs: Vec<_> = members.iter().map(|(m, _)| m).zip(&batches).collect();
        let probabilities = ensemble_probabilities(&pairs, device);
        let batch = &batches[0];
        for ((row, &label), &index) in probabilities
            .chunks_exact(classes)
            .zip(&batch.labels)
            .zip(&batch.indices)
        {
            let top = top_k(row, k5);
            let best = top[0];
            confusion[label][best] += 1;
            top1_misses += usize::from(best != label);
            top5_misses += usize::from(!top.contains(&label));
            outcomes.push(ImageOutcome {
                index,
                label,
                top: top.iter().map(|&class| (class, row[class])).collect(),
            });
        }
        images += batch.len();
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: usize = row.iter().sum();
            if total == 0 {
                0.0
            } else {
                row[c] as f64 / total as f64
            }
        })
        .collect();
    let n = images.max(1) as f64;
    Ok(EvalReport {
        images,
        top1_error: top1_misses as f64 / n,
        top5_error: top5_misses as f64 / n,
        top1_misses,
        top5_misses,
        class_names,
        per_class_accuracy,
        confusion,
        outcomes,
    })
}
