//! A baseline method end to end: features of both splits, the learner, top-1 and top-5 error.

use std::time::Instant;

use alexnet_data::{DataError, PatchSource};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::features::{Standardiser, hog_colour, pixels};
use crate::{knn, softmax};

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}")]
    Fit(String),
    #[error("{0}")]
    Options(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    KnnPixels,
    SoftmaxPixels,
    HogColour,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::KnnPixels, Method::SoftmaxPixels, Method::HogColour];

    pub fn name(self) -> &'static str {
        match self {
            Method::KnnPixels => "knn-pixels",
            Method::SoftmaxPixels => "softmax-pixels",
            Method::HogColour => "hog-colour",
        }
    }

    pub fn describe(self, options: &BaselineOptions) -> String {
        let side = options.side;
        match self {
            Method::KnnPixels => format!(
                "{}-nearest neighbours, Euclidean, on {side}x{side} RGB pixels",
                options.k
            ),
            Method::SoftmaxPixels => format!("softmax regression on {side}x{side} RGB pixels"),
            Method::HogColour => format!(
                "softmax regression on HOG (9 orientations, 8x8 cells, 2x2 blocks) of the \
                 {side}x{side} grey image and a 64-bin RGB histogram"
            ),
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown baseline `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineOptions {
    /// Images are resized to `side` x `side` before their features are taken.
    pub side: usize,
    /// Neighbours that vote, for k-NN.
    pub k: usize,
    /// L2 penalty of the softmax regression (on the summed loss).
    pub alpha: f32,
    /// L-BFGS iterations of the softmax regression.
    pub max_iterations: u64,
}

impl Default for BaselineOptions {
    fn default() -> Self {
        Self {
            side: 32,
            k: 10,
            alpha: 1.0,
            max_iterations: 200,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineResult {
    pub method: Method,
    pub description: String,
    pub options: BaselineOptions,
    pub features: usize,
    pub train_images: usize,
    pub test_images: usize,
    pub top1_error: f64,
    pub top5_error: f64,
    pub seconds: f64,
}

/// Share of rows whose label is not among the first `k` ranked classes.
pub(crate) fn error_at(ranked: &[Vec<usize>], labels: &[usize], k: usize) -> f64 {
    let wrong = ranked
        .iter()
        .zip(labels)
        .filter(|(r, l)| !r.iter().take(k).any(|c| c == *l))
        .count();
    wrong as f64 / labels.len().max(1) as f64
}

/// Trains `method` on `train` and measures it on `test` (the same class list).
pub fn run(
    method: Method,
    options: &BaselineOptions,
    train: &dyn PatchSource,
    test: &dyn PatchSource,
    progress: &ProgressBar,
) -> Result<BaselineResult, BaselineError> {
    if options.side < 8 || !options.side.is_multiple_of(8) || options.side > 512 {
        return Err(BaselineError::Options(format!(
            "--side must be a multiple of 8 in 8..=512 (HOG's 8 cells across), got {}",
            options.side
        )));
    }
    if options.k == 0 {
        return Err(BaselineError::Options("--k must be at least 1".into()));
    }
    let started = Instant::now();
    let features = |source: &dyn PatchSource| match method {
        Method::KnnPixels | Method::SoftmaxPixels => pixels(source, options.side),
        Method::HogColour => hog_colour(source, options.side),
    };
    progress.set_message(format!("{}: features", method.name()));
    let mut train_rows = features(train)?;
    let mut test_rows = features(test)?;
    let train_labels: Vec<usize> = (0..train.len()).map(|i| train.label(i)).collect();
    let test_labels: Vec<usize> = (0..test.len()).map(|i| test.label(i)).collect();
    progress.set_message(format!("{}: fitting", method.name()));
    let ranked = match method {
        Method::KnnPixels => knn::rank_classes(
            &train_rows,
            &train_labels,
            &test_rows,
            train.class_names().len(),
            options.k,
            progress,
        )?,
        Method::SoftmaxPixels | Method::HogColour => {
            let standardiser = Standardiser::fit(&train_rows);
            standardiser.apply(&mut train_rows);
            standardiser.apply(&mut test_rows);
            softmax::rank_classes(
                &train_rows,
                &train_labels,
                &test_rows,
                options.alpha,
                options.max_iterations,
            )?
        }
    };
    Ok(BaselineResult {
        method,
        description: method.describe(options),
        options: options.clone(),
        features: train_rows.ncols(),
        train_images: train.len(),
        test_images: test.len(),
        top1_error: error_at(&ranked, &test_labels, 1),
        top5_error: error_at(&ranked, &test_labels, 5),
        seconds: started.elapsed().as_secs_f64(),
    })
}
