//! Nearest neighbours in the last hidden layer (Section 6.1, Figure 4 right): "If two images
//! produce feature activation vectors with a small Euclidean separation, we can say that the
//! higher levels of the neural network consider them to be similar."
//!
//! The feature index holds the last hidden layer (fc7, 4096 values for the ImageNet nets) of the
//! centre crop of every training image. It is built once and saved in the run directory as
//! `features.safetensors`, keyed by a digest of the weights and the mean image it was computed
//! with, so it is reused until the checkpoint changes. The search is exact (brute force over all
//! training images, on all cores): for a few queries over tens of thousands of 4096-d vectors it
//! takes milliseconds, and an approximate index would only add error.

use std::collections::HashMap;
use std::hash::Hasher;
use std::path::Path;
use std::sync::Arc;

use alexnet_data::{
    BatchLoader, DataError, DatasetStats, DecodedSet, ViewPlan, read_tensors, write_tensors,
};
use alexnet_model::AlexNet;
use alexnet_run::{Checkpoint, batch_images};
use burn::tensor::Device;
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::error::ReportError;

/// The file name of the index in a run directory.
pub const INDEX_FILE: &str = "features.safetensors";

/// One training image near a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Position in the training split.
    pub index: usize,
    /// Euclidean distance between the two feature vectors.
    pub distance: f32,
}

/// The last hidden layer of every image of a split, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureIndex {
    /// What the features were computed with: [`checkpoint_key`] and which training images.
    pub key: String,
    pub dims: usize,
    /// `[len, dims]`.
    pub features: Vec<f32>,
    pub labels: Vec<usize>,
}

impl FeatureIndex {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, index: usize) -> &[f32] {
        &self.features[index * self.dims..(index + 1) * self.dims]
    }

    /// The `k` rows closest to `query` in Euclidean distance, closest first (ties by position).
    pub fn nearest(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        assert_eq!(query.len(), self.dims, "a query has the index's dimension");
        let mut all: Vec<Neighbour> = self
            .features
            .par_chunks_exact(self.dims)
            .enumerate()
            .map(|(index, row)| Neighbour {
                index,
                distance: squared_distance(row, query).sqrt(),
            })
            .collect();
        let k = k.min(all.len());
        let by_distance = |a: &Neighbour, b: &Neighbour| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.index.cmp(&b.index))
        };
        if k < all.len() {
            all.select_nth_unstable_by(k, by_distance);
            all.truncate(k);
        }
        all.sort_by(by_distance);
        all
    }

    pub fn save(&self, path: &Path) -> Result<(), ReportError> {
        let labels: Vec<f32> = self.labels.iter().map(|&l| l as f32).collect();
        let shape = [self.len(), self.dims];
        let labels_shape = [self.len()];
        write_tensors(
            path,
            &[
                ("features".to_string(), &shape, &self.features),
                ("labels".to_string(), &labels_shape, &labels),
            ],
            HashMap::from([("key".to_string(), self.key.clone())]),
        )?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let (metadata, tensors) = read_tensors(path)?;
        let bad = |reason: &str| ReportError::BadIndex {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let find = |name: &str| tensors.iter().find(|t| t.name == name);
        let (Some(features), Some(labels)) = (find("features"), find("labels")) else {
            return Err(bad("it lacks the tensor `features` or `labels`"));
        };
        let [rows, dims] = features.shape[..] else {
            return Err(bad("`features` is not a matrix"));
        };
        if labels.values.len() != rows {
            return Err(bad("`labels` and `features` have different lengths"));
        }
        Ok(Self {
            key: metadata.get("key").cloned().unwrap_or_default(),
            dims,
            features: features.values.clone(),
            labels: labels.values.iter().map(|&l| l as usize).collect(),
        })
    }
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A digest of what the features depend on: the weights, and the mean image and per-channel
/// scale that prepare the input. Two checkpoints with the same weights give the same key.
pub fn checkpoint_key(checkpoint: &Checkpoint) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    for tensor in &checkpoint.weights {
        hasher.write(tensor.name.as_bytes());
        tensor
            .values
            .iter()
            .for_each(|v| hasher.write_u32(v.to_bits()));
    }
    let stats = &checkpoint.stats;
    (stats.mean_image.iter().chain(&stats.input_scale)).for_each(|v| hasher.write_u32(v.to_bits()));
    format!(
        "{} epoch {} step {} weights {:016x}",
        checkpoint.recipe.model.arch,
        checkpoint.progress.epochs_done,
        checkpoint.progress.step,
        hasher.finish()
    )
}

/// The last hidden layer of every image `loader` yields (its view plan decides the crop), in
/// the loader's order, `[len, dims]`, with the width of one row.
pub fn hidden_features(
    model: &AlexNet,
    loader: &BatchLoader,
    device: &Device,
    progress: &ProgressBar,
) -> Result<(Vec<f32>, usize), DataError> {
    progress.set_length(loader.set.len() as u64);
    let (mut features, mut dims) = (Vec::new(), 0);
    for batch in loader.epoch(0, 0) {
        let batch = batch?;
        let hidden = model.last_hidden(batch_images(&batch, device));
        dims = hidden.dims()[1];
        features.extend(
            hidden
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 features"),
        );
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    Ok((features, dims))
}

/// The last hidden layer of the centre crops of `patches` (`[side, side, 3]` bytes each, back
/// to back), prepared with `stats`' mean image: the queries of a search, `[len, dims]`, and
/// `dims`.
pub fn patch_features(
    model: &AlexNet,
    stats: &Arc<DatasetStats>,
    crop: usize,
    side: usize,
    patches: Vec<u8>,
    device: &Device,
) -> Result<(Vec<f32>, usize), ReportError> {
    let count = patches.len() / (side * side * 3);
    if count == 0 {
        return Ok((Vec::new(), 0));
    }
    let set = DecodedSet::from_patches(side, patches, vec![0; count], vec![String::new()]);
    let loader = BatchLoader::new(Arc::new(set), stats.clone(), crop, 64, ViewPlan::Centre, 0)?;
    Ok(hidden_features(
        model,
        &loader,
        device,
        &ProgressBar::hidden(),
    )?)
}

/// The index saved in `run_dir` if it was built with these weights over these images;
/// otherwise a new one over `loader`'s split (centre crops), saved there. Returns whether it
/// was (re)built.
pub fn load_or_build(
    run_dir: &Path,
    checkpoint: &Checkpoint,
    model: &AlexNet,
    loader: &BatchLoader,
    device: &Device,
    progress: &ProgressBar,
) -> Result<(FeatureIndex, bool), ReportError> {
    let path = run_dir.join(INDEX_FILE);
    // The weights, and which training images: another data set given with --data is another
    // index.
    let set = &loader.set;
    let images = match set.len() {
        0 => "no images".to_string(),
        n => format!("{n} images, {} to {}", set.name(0), set.name(n - 1)),
    };
    let key = format!("{}; {images}", checkpoint_key(checkpoint));
    if path.exists() {
        // An unreadable or stale index is rebuilt, not an error: it is a cache.
        if let Ok(index) = FeatureIndex::load(&path)
            && index.key == key
            && index.len() == set.len()
        {
            return Ok((index, false));
        }
    }
    let (features, dims) = hidden_features(model, loader, device, progress)?;
    let labels = (0..set.len()).map(|i| set.label(i)).collect();
    let index = FeatureIndex {
        key,
        dims,
        features,
        labels,
    };
    index.save(&path)?;
    Ok((index, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_index(rows: usize, dims: usize, seed: u64) -> FeatureIndex {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        FeatureIndex {
            key: "k".into(),
            dims,
            features: (0..rows * dims)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect(),
            labels: (0..rows).map(|i| i % 3).collect(),
        }
    }

    #[test]
    fn nearest_agrees_with_a_brute_force_search() {
        let index = random_index(300, 17, 1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for _ in 0..5 {
            let query: Vec<f32> = (0..17).map(|_| rng.random_range(-1.0..1.0)).collect();
            // Brute force, written differently: every distance in f64, sorted.
            let mut expected: Vec<(f64, usize)> = (0..300)
                .map(|i| {
                    let d: f64 = index
                        .row(i)
                        .iter()
                        .zip(&query)
                        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                        .sum();
                    (d.sqrt(), i)
                })
                .collect();
            expected.sort_by(|a, b| a.0.total_cmp(&b.0));
            let found = index.nearest(&query, 6);
            let found_indices: Vec<usize> = found.iter().map(|n| n.index).collect();
            let expected_indices: Vec<usize> = expected[..6].iter().map(|e| e.1).collect();
            assert_eq!(found_indices, expected_indices);
            for (n, e) in found.iter().zip(&expected) {
                assert!((n.distance as f64 - e.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn a_training_image_is_its_own_nearest_neighbour_at_distance_zero() {
        let index = random_index(50, 8, 3);
        for i in [0, 17, 49] {
            let nearest = index.nearest(index.row(i), 3);
            assert_eq!(nearest[0].index, i);
            assert_eq!(nearest[0].distance, 0.0);
            assert!(nearest[1].distance > 0.0);
        }
        assert_eq!(index.nearest(index.row(0), 500).len(), 50, "k is capped");
    }

    #[test]
    fn the_index_round_trips_through_its_file() {
        let index = random_index(20, 5, 4);
        let dir = std::env::temp_dir().join(format!("alexnet-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(INDEX_FILE);
        index.save(&path).unwrap();
        assert_eq!(FeatureIndex::load(&path).unwrap(), index);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
