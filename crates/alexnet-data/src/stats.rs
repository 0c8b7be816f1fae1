//! Training-set statistics the paper's preprocessing needs.
//!
//! - Section 2: "subtracting the mean activity over the training set from each pixel": a mean
//!   image, `[3, side, side]`.
//! - Section 4.1: "PCA on the set of RGB pixel values throughout the ImageNet training set": the
//!   3x3 covariance of all pixels, its eigenvalues lambda_i and eigenvectors p_i.
//!
//! Pixels are on the 0..255 scale throughout, as the paper's raw RGB values.

use std::collections::HashMap;
use std::path::Path;

use nalgebra::{Matrix3, SymmetricEigen};
use rayon::prelude::*;

use crate::atomic::write_atomic;
use crate::error::DataError;
use crate::patch_source::PatchSource;
use crate::tensor_file::{NamedTensor, read_tensors, write_tensors};

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetStats {
    pub side: usize,
    /// `[3, side, side]`, channel-major.
    pub mean_image: Vec<f32>,
    /// Eigenvalues of the RGB covariance, largest first.
    pub eigenvalues: [f32; 3],
    /// `eigenvectors[i]` is the unit eigenvector p_i (an RGB direction) of `eigenvalues[i]`.
    pub eigenvectors: [[f32; 3]; 3],
    /// What each channel of a view is multiplied by once the mean is subtracted: 1, the paper's
    /// raw 0..255 differences, or 1 / the channel's std on a run with `data.normalize` (see
    /// [`DatasetStats::normalized`]). Kept with the run's statistics, so every later use of its
    /// checkpoints (eval, predict, export) prepares inputs the way training did.
    pub input_scale: [f32; 3],
}

/// Sums over a slice of images: per-position channel sums, RGB sums, RGB products.
#[derive(Clone)]
struct Sums {
    image: Vec<f64>,
    rgb: [f64; 3],
    products: [[f64; 3]; 3],
}

impl Sums {
    fn zero(side: usize) -> Self {
        Self {
            image: vec![0.0; 3 * side * side],
            rgb: [0.0; 3],
            products: [[0.0; 3]; 3],
        }
    }

    fn add_patch(mut self, patch: &[u8], plane: usize) -> Self {
        for (position, pixel) in patch.chunks_exact(3).enumerate() {
            let rgb = [pixel[0] as f64, pixel[1] as f64, pixel[2] as f64];
            for c in 0..3 {
                self.image[c * plane + position] += rgb[c];
                self.rgb[c] += rgb[c];
                for d in 0..3 {
                    self.products[c][d] += rgb[c] * rgb[d];
                }
            }
        }
        self
    }

    fn merge(mut self, other: Self) -> Self {
        self.image
            .iter_mut()
            .zip(&other.image)
            .for_each(|(a, b)| *a += b);
        for c in 0..3 {
            self.rgb[c] += other.rgb[c];
            for d in 0..3 {
                self.products[c][d] += other.products[c][d];
            }
        }
        self
    }
}

impl DatasetStats {
    /// Statistics of no data set: a mean image of one colour (`mean` per channel, RGB) at side
    /// `side`, and no colour noise to draw (zero eigenvalues). For weights that come from
    /// elsewhere (an imported state dict) and tests.
    pub fn flat(side: usize, mean: [f32; 3]) -> Self {
        Self {
            side,
            mean_image: mean
                .iter()
                .flat_map(|&m| std::iter::repeat_n(m, side * side))
                .collect(),
            eigenvalues: [0.0; 3],
            eigenvectors: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            input_scale: [1.0; 3],
        }
    }

    /// One pass over every pixel of `set`, on all cores.
    pub fn compute(set: &dyn PatchSource) -> Result<Self, DataError> {
        let side = set.side();
        let plane = side * side;
        let sums = (0..set.len())
            .into_par_iter()
            .try_fold(
                || Sums::zero(side),
                |sums, i| Ok::<_, DataError>(sums.add_patch(&set.patch(i)?, plane)),
            )
            .try_reduce(|| Sums::zero(side), |a, b| Ok(a.merge(b)))?;
        let images = set.len().max(1) as f64;
        let pixels = images * plane as f64;
        let mean_rgb = sums.rgb.map(|s| s / pixels);
        let covariance =
            Matrix3::from_fn(|c, d| sums.products[c][d] / pixels - mean_rgb[c] * mean_rgb[d]);
        let (eigenvalues, eigenvectors) = principal_components(covariance);
        Ok(Self {
            side,
            mean_image: sums.image.iter().map(|s| (s / images) as f32).collect(),
            eigenvalues,
            eigenvectors,
            input_scale: [1.0; 3],
        })
    }

    /// These statistics with inputs divided by each channel's standard deviation (`on`), as
    /// torchvision's `Normalize` does, or left on the paper's 0..255 scale. Not in the paper: unit
    /// inputs let the first layer learn at the rate of the others. A channel without variance
    /// keeps scale 1.
    pub fn normalized(mut self, on: bool) -> Self {
        self.input_scale = if on {
            self.channel_std()
                .map(|std| if std > 0.0 { 1.0 / std } else { 1.0 })
        } else {
            [1.0; 3]
        };
        self
    }

    /// Mean of each channel over all pixels (the mean image averaged over positions).
    pub fn channel_mean(&self) -> [f32; 3] {
        let plane = self.side * self.side;
        std::array::from_fn(|c| {
            let sum: f64 = self.mean_image[c * plane..(c + 1) * plane]
                .iter()
                .map(|&v| v as f64)
                .sum();
            (sum / plane.max(1) as f64) as f32
        })
    }

    /// The RGB covariance, rebuilt from its eigen-decomposition: `sum_i lambda_i p_i p_i^T`.
    pub fn covariance(&self) -> [[f32; 3]; 3] {
        std::array::from_fn(|c| {
            std::array::from_fn(|d| {
                (0..3)
                    .map(|i| {
                        self.eigenvalues[i] * self.eigenvectors[i][c] * self.eigenvectors[i][d]
                    })
                    .sum()
            })
        })
    }

    /// Standard deviation of each channel over all pixels.
    pub fn channel_std(&self) -> [f32; 3] {
        let covariance = self.covariance();
        std::array::from_fn(|c| covariance[c][c].max(0.0).sqrt())
    }

    /// Writes `stats.safetensors` (tensors `stats.mean_image` `[3, side, side]`, `stats.eigenvalues`,
    /// `stats.eigenvectors` (rows are p_i), `stats.input_scale`, `stats.covariance`, `stats.channel_mean`,
    /// `stats.channel_std`) and a readable `stats.json` beside it.
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        // The four a checkpoint keeps, and the derived ones people look for.
        let mut tensors = self.to_tensors();
        for (name, values) in [
            ("covariance", self.covariance().concat()),
            ("channel_mean", self.channel_mean().to_vec()),
            ("channel_std", self.channel_std().to_vec()),
        ] {
            let shape = if values.len() == 9 {
                vec![3, 3]
            } else {
                vec![3]
            };
            tensors.push(NamedTensor {
                name: name.into(),
                shape,
                values,
            });
        }
        let borrowed: Vec<_> = tensors.iter().map(|t| t.borrowed("stats")).collect();
        let metadata = HashMap::from([("format".to_string(), "alexnet-stats".to_string())]);
        write_tensors(&dir.join("stats.safetensors"), &borrowed, metadata)?;
        let summary = serde_json::json!({
            "side": self.side,
            "channel_mean": self.channel_mean(),
            "channel_std": self.channel_std(),
            "covariance": self.covariance(),
            "eigenvalues": self.eigenvalues,
            "eigenvectors": self.eigenvectors,
            "input_scale": self.input_scale,
        });
        let text = serde_json::to_string_pretty(&summary).expect("numbers serialize");
        write_atomic(&dir.join("stats.json"), text.as_bytes())
    }

    /// Reads what [`DatasetStats::write`] wrote in `dir`.
    pub fn read(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join("stats.safetensors");
        let (_, tensors) = read_tensors(&path)?;
        let stats: Vec<NamedTensor> = tensors
            .into_iter()
            .filter_map(|mut t| {
                t.name = t.name.strip_prefix("stats.")?.to_string();
                Some(t)
            })
            .collect();
        Self::from_tensors(&stats).map_err(|reason| DataError::BadStatistics { path, reason })
    }

    /// The statistics among `tensors` (named `mean_image`, `eigenvalues`, `eigenvectors`).
    pub fn from_tensors(tensors: &[NamedTensor]) -> Result<Self, String> {
        let find = |name: &str| {
            tensors
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| format!("no stats.{name}"))
        };
        let mean = find("mean_image")?;
        let values = &find("eigenvalues")?.values;
        let vectors = &find("eigenvectors")?.values;
        // Absent from statistics written before `data.normalize` existed: the paper's scale.
        let scale = find("input_scale").map_or(&[1.0f32; 3][..], |t| &t.values[..]);
        let shape = &mean.shape;
        if shape.len() != 3
            || shape[0] != 3
            || shape[1] != shape[2]
            || values.len() != 3
            || vectors.len() != 9
            || scale.len() != 3
        {
            return Err("malformed statistics tensors".into());
        }
        Ok(Self {
            side: shape[1],
            mean_image: mean.values.clone(),
            eigenvalues: [values[0], values[1], values[2]],
            eigenvectors: std::array::from_fn(|i| {
                [vectors[3 * i], vectors[3 * i + 1], vectors[3 * i + 2]]
            }),
            input_scale: [scale[0], scale[1], scale[2]],
        })
    }

    /// The four tensors the network's input needs (a checkpoint stores them as `stats.<name>`).
    pub fn to_tensors(&self) -> Vec<NamedTensor> {
        vec![
            NamedTensor {
                name: "mean_image".into(),
                shape: vec![3, self.side, self.side],
                values: self.mean_image.clone(),
            },
            NamedTensor {
                name: "eigenvalues".into(),
                shape: vec![3],
                values: self.eigenvalues.to_vec(),
            },
            NamedTensor {
                name: "eigenvectors".into(),
                shape: vec![3, 3],
                values: self.eigenvectors.concat(),
            },
            NamedTensor {
                name: "input_scale".into(),
                shape: vec![3],
                values: self.input_scale.to_vec(),
            },
        ]
    }
}

/// Eigen-decomposition of a symmetric 3x3 matrix, eigenvalues sorted largest first.
pub fn principal_components(covariance: Matrix3<f64>) -> ([f32; 3], [[f32; 3]; 3]) {
    let eigen = SymmetricEigen::new(covariance);
    let mut order = [0, 1, 2];
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let values = order.map(|i| eigen.eigenvalues[i].max(0.0) as f32);
    let vectors = order.map(|i| {
        let v = eigen.eigenvectors.column(i);
        [v[0] as f32, v[1] as f32, v[2] as f32]
    });
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DecodedSet;

    #[test]
    fn mean_image_and_covariance_match_a_direct_computation() {
        // Three 2x2 images; pixel values chosen so that R and G are correlated and B is constant.
        let pixels: Vec<u8> = vec![
            10, 20, 7, 30, 40, 7, 50, 60, 7, 70, 80, 7, //
            0, 10, 7, 20, 30, 7, 40, 50, 7, 60, 70, 7, //
            20, 30, 7, 40, 50, 7, 60, 70, 7, 80, 90, 7,
        ];
        let set = DecodedSet::from_patches(
            2,
            pixels.clone(),
            vec![0, 1, 0],
            vec!["a".into(), "b".into()],
        );
        let stats = DatasetStats::compute(&set).unwrap();
        // Mean image, channel-major: R at position 0 is (10 + 0 + 20) / 3.
        assert!((stats.mean_image[0] - 10.0).abs() < 1e-5);
        assert!((stats.mean_image[4] - 20.0).abs() < 1e-5, "G at position 0");
        assert!(
            (stats.mean_image[8 + 3] - 7.0).abs() < 1e-5,
            "B at position 3"
        );

        // Direct covariance of the 12 RGB pixels.
        let rgb: Vec<[f64; 3]> = pixels
            .chunks(3)
            .map(|p| [p[0] as f64, p[1] as f64, p[2] as f64])
            .collect();
        let n = rgb.len() as f64;
        let mean: Vec<f64> = (0..3)
            .map(|c| rgb.iter().map(|p| p[c]).sum::<f64>() / n)
            .collect();
        let var_r = rgb.iter().map(|p| (p[0] - mean[0]).powi(2)).sum::<f64>() / n;
        // R and G move together (G = R + 10), B is constant: one component of variance 2 var_r.
        assert!((stats.eigenvalues[0] as f64 - 2.0 * var_r).abs() < 1e-2 * var_r);
        assert!(stats.eigenvalues[1].abs() < 1e-3 && stats.eigenvalues[2].abs() < 1e-3);
        let p1 = stats.eigenvectors[0];
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (p1[0].abs() - s).abs() < 1e-4 && (p1[1].abs() - s).abs() < 1e-4 && p1[2].abs() < 1e-4
        );
        assert!(
            stats.mean_image[8..].iter().all(|&b| b == 7.0),
            "B is 7 everywhere"
        );

        // Per-channel mean and std, and the covariance rebuilt from the eigen-decomposition.
        assert!((stats.channel_mean()[0] as f64 - mean[0]).abs() < 1e-4);
        assert!((stats.channel_mean()[1] as f64 - mean[1]).abs() < 1e-4);
        assert!((stats.channel_std()[0] as f64 - var_r.sqrt()).abs() < 1e-2);
        let cov_rg = rgb
            .iter()
            .map(|p| (p[0] - mean[0]) * (p[1] - mean[1]))
            .sum::<f64>()
            / n;
        assert!((stats.covariance()[0][1] as f64 - cov_rg).abs() < 1e-2 * var_r);
        assert!(stats.channel_std()[2].abs() < 0.05, "B is constant");

        // The file round trip.
        let dir = std::env::temp_dir().join(format!("alexnet-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        stats.write(&dir).unwrap();
        assert_eq!(DatasetStats::read(&dir).unwrap(), stats);
        let json = std::fs::read_to_string(dir.join("stats.json")).unwrap();
        assert!(
            json.contains("channel_std") && json.contains("eigenvectors"),
            "{json}"
        );
    }

    #[test]
    fn normalized_statistics_scale_each_channel_by_its_inverse_std() {
        // R varies, G varies twice as much, B is constant (no variance: scale stays 1).
        let pixels: Vec<u8> = [(10, 20), (30, 60), (50, 100), (70, 140)]
            .iter()
            .flat_map(|&(r, g)| [r, g, 9])
            .collect();
        let set =
            DecodedSet::from_patches(1, pixels, vec![0, 1, 0, 1], vec!["a".into(), "b".into()]);
        let stats = DatasetStats::compute(&set).unwrap();
        assert_eq!(
            stats.input_scale, [1.0; 3],
            "the paper's scale unless asked"
        );
        let normal = stats.clone().normalized(true);
        let std = stats.channel_std();
        let r_std =
            (((30.0f32 - 40.0).powi(2) * 2.0 + (10.0f32 - 40.0).powi(2) * 2.0) / 4.0).sqrt();
        assert!((std[0] - r_std).abs() < 1e-2 * r_std, "{std:?}");
        assert!((normal.input_scale[0] * r_std - 1.0).abs() < 1e-3);
        assert!((normal.input_scale[1] * 2.0 * r_std - 1.0).abs() < 1e-3);
        assert_eq!(
            normal.input_scale[2], 1.0,
            "a constant channel keeps scale 1"
        );
        assert_eq!(normal.clone().normalized(false).input_scale, [1.0; 3]);

        // The scale survives the file, and a file without it reads as the paper's scale.
        let dir = std::env::temp_dir().join(format!("alexnet-scale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        normal.write(&dir).unwrap();
        assert_eq!(DatasetStats::read(&dir).unwrap(), normal);
        let older: Vec<NamedTensor> = normal
            .to_tensors()
            .into_iter()
            .filter(|t| t.name != "input_scale")
            .collect();
        assert_eq!(DatasetStats::from_tensors(&older).unwrap(), stats);
    }
}
