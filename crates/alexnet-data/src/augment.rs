//! Section 4.1, data augmentation: one *view* of a stored square patch.
//!
//! - Training: a random `crop` x `crop` patch (224 of 256), reflected horizontally with probability
//!   1/2, with PCA colour noise added to every pixel.
//! - Testing ("10-crop"): the four corner patches and the centre patch, and their reflections.
//!
//! Every view has the training set's mean image subtracted at the pixel's source position (the mean
//! is of the 256x256 patches, Section 2), and comes out channel-major, `[3, crop, crop]`, as float.
//!
//! PCA colour noise: to each RGB pixel add `[p1 p2 p3][a1 s1, a2 s2, a3 s3]^T` with `a_i ~ N(0, sigma)`
//! drawn once per image per use. The paper writes lambda_i (the eigenvalue) where we write
//! s_i = sqrt(lambda_i), the standard deviation along p_i: on the paper's 0..255 pixel scale the
//! eigenvalues are variances of order 10^4, and 0.1 of one would shift pixels far beyond their range,
//! while 0.1 standard deviation is the "intensity and colour of the illumination" change it describes
//! (about 10 grey levels). cuda-convnet2 and fb.resnet.torch scale by the same kind of quantity.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::stats::DatasetStats;

/// Where a crop sits in the stored patch, and whether it is reflected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Left column and top row of the crop in the stored patch.
    pub x: usize,
    pub y: usize,
    pub flip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropPosition {
    Centre,
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

impl CropPosition {
    pub fn view(self, side: usize, crop: usize, flip: bool) -> View {
        let far = side - crop;
        let (x, y) = match self {
            CropPosition::Centre => (far / 2, far / 2),
            CropPosition::TopLeft => (0, 0),
            CropPosition::TopRight => (far, 0),
            CropPosition::BottomLeft => (0, far),
            CropPosition::BottomRight => (far, far),
        };
        View { x, y, flip }
    }
}

/// Section 4.1: "the four corner patches and the center patch as well as their horizontal
/// reflections (hence ten patches in all)". Order: the five unreflected, then the five reflected.
pub fn ten_crop_views(side: usize, crop: usize) -> [View; 10] {
    use CropPosition::*;
    let positions = [TopLeft, TopRight, BottomLeft, BottomRight, Centre];
    std::array::from_fn(|i| positions[i % 5].view(side, crop, i >= 5))
}

/// A uniformly random crop position, reflected with probability 1/2 when `flip` is on.
pub fn random_view(rng: &mut impl Rng, side: usize, crop: usize, flip: bool) -> View {
    View {
        x: rng.random_range(0..=side - crop),
        y: rng.random_range(0..=side - crop),
        flip: flip && rng.random_bool(0.5),
    }
}

/// The RGB shift of one image: `sum_i p_i * a_i * s_i` with `a_i ~ N(0, sigma)`.
pub fn pca_colour_shift(rng: &mut impl Rng, stats: &DatasetStats, sigma: f32) -> [f32; 3] {
    let mut shift = [0.0f32; 3];
    if sigma <= 0.0 {
        return shift;
    }
    let normal = Normal::new(0.0f32, sigma).expect("sigma is positive and finite");
    for (p, lambda) in stats.eigenvectors.iter().zip(stats.eigenvalues) {
        let amount = normal.sample(rng) * lambda.sqrt();
        for c in 0..3 {
            shift[c] += p[c] * amount;
        }
    }
    shift
}

/// Writes one view of `patch` (`[side, side, 3]` bytes) into `out` (`[3, crop, crop]`):
/// (pixel - mean image at the same source position + `shift`) * the channel's input scale (1 but
/// with `data.normalize`).
///
/// One channel row at a time, so the mean image and the output are read and written contiguously;
/// this is the inner loop of every epoch.
pub fn write_view(
    patch: &[u8],
    stats: &DatasetStats,
    crop: usize,
    view: View,
    shift: [f32; 3],
    out: &mut [f32],
) {
    let side = stats.side;
    let plane = side * side;
    assert_eq!(patch.len(), plane * 3, "patch of the statistics' side");
    assert_eq!(out.len(), 3 * crop * crop, "output of one view");
    for (c, out_plane) in out.chunks_exact_mut(crop * crop).enumerate() {
        let mean_plane = &stats.mean_image[c * plane..(c + 1) * plane];
        let (shift, scale) = (shift[c], stats.input_scale[c]);
        for (row, out_row) in out_plane.chunks_exact_mut(crop).enumerate() {
            let start = (view.y + row) * side + view.x;
            let source = &patch[start * 3..(start + crop) * 3];
            let mean = &mean_plane[start..start + crop];
            let pixels = source.chunks_exact(3).map(|p| p[c] as f32).zip(mean);
            if view.flip {
                for (o, (p, m)) in out_row.iter_mut().rev().zip(pixels) {
                    *o = (p - m + shift) * scale;
                }
            } else {
                for (o, (p, m)) in out_row.iter_mut().zip(pixels) {
                    *o = (p - m + shift) * scale;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn flat_stats(side: usize) -> DatasetStats {
        DatasetStats {
            side,
            mean_image: vec![0.0; 3 * side * side],
            eigenvalues: [900.0, 100.0, 4.0],
            eigenvectors: [[0.6, 0.8, 0.0], [-0.8, 0.6, 0.0], [0.0, 0.0, 1.0]],
            input_scale: [1.0; 3],
        }
    }

    #[test]
    fn ten_crops_are_the_corners_and_centre_and_their_reflections() {
        let views = ten_crop_views(256, 224);
        let spots: Vec<(usize, usize, bool)> = views.iter().map(|v| (v.x, v.y, v.flip)).collect();
        assert_eq!(
            spots,
            vec![
                (0, 0, false),
                (32, 0, false),
                (0, 32, false),
                (32, 32, false),
                (16, 16, false),
                (0, 0, true),
                (32, 0, true),
                (0, 32, true),
                (32, 32, true),
                (16, 16, true)
            ]
        );
    }

    #[test]
    fn a_view_crops_reflects_and_subtracts_the_mean_at_the_source_pixel() {
        // 4x4 patch whose red value is 10 * column + row; crop 2 at (x 1, y 2).
        let side = 4;
        let mut patch = vec![0u8; side * side * 3];
        for y in 0..side {
            for x in 0..side {
                patch[(y * side + x) * 3] = (10 * x + y) as u8;
            }
        }
        let mut stats = flat_stats(side);
        stats.mean_image[2 * side + 1] = 5.0; // red mean at row 2, column 1
        // The crop of side 2 at (x 1, y 2).
        let view = |stats: &DatasetStats, flip: bool, shift: [f32; 3]| {
            let mut out = vec![0.0; 3 * 4];
            write_view(&patch, stats, 2, View { x: 1, y: 2, flip }, shift, &mut out);
            out
        };
        assert_eq!(
            &view(&stats, false, [0.0; 3])[..4],
            &[12.0 - 5.0, 22.0, 13.0, 23.0]
        );
        // Reflected: column order reversed, the mean still follows the source pixel.
        let out = view(&stats, true, [1.0, 0.0, 0.0]);
        assert_eq!(&out[..4], &[23.0, 12.0 - 5.0 + 1.0, 24.0, 14.0]);
        // data.normalize: the difference and the shift, scaled per channel; green has value 0.
        stats.input_scale = [0.5, 0.25, 1.0];
        let out = view(&stats, false, [1.0, 2.0, 0.0]);
        assert_eq!(&out[..4], &[4.0, 11.5, 7.0, 12.0]);
        assert_eq!(&out[4..8], &[0.5; 4]);
    }

    #[test]
    fn random_views_cover_every_position_and_flip_half_the_time() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let views: Vec<View> = (0..4000)
            .map(|_| random_view(&mut rng, 10, 8, true))
            .collect();
        for x in 0..=2 {
            assert!(views.iter().any(|v| v.x == x) && views.iter().any(|v| v.y == x));
        }
        assert!(views.iter().all(|v| v.x <= 2 && v.y <= 2));
        let flipped = views.iter().filter(|v| v.flip).count() as f64 / views.len() as f64;
        assert!((flipped - 0.5).abs() < 0.03, "{flipped}");
    }

    #[test]
    fn pca_noise_has_sigma_squared_times_the_pixel_covariance() {
        // Cov(shift) = sigma^2 * sum_i lambda_i p_i p_i^T = sigma^2 * the RGB covariance.
        let stats = flat_stats(1);
        let sigma = 0.1f32;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 200_000;
        let shifts: Vec<[f32; 3]> = (0..n)
            .map(|_| pca_colour_shift(&mut rng, &stats, sigma))
            .collect();
        let mut mean = [0.0f64; 3];
        let mut cov = [[0.0f64; 3]; 3];
        for s in &shifts {
            for (c, row) in cov.iter_mut().enumerate() {
                mean[c] += s[c] as f64 / n as f64;
                for (d, entry) in row.iter_mut().enumerate() {
                    *entry += (s[c] * s[d]) as f64 / n as f64;
                }
            }
        }
        assert!(mean.iter().all(|m| m.abs() < 0.02), "mean {mean:?}");
        for (c, row) in cov.iter().enumerate() {
            for (d, &got) in row.iter().enumerate() {
                let want: f64 = (0..3)
                    .map(|i| {
                        (sigma * sigma) as f64
                            * stats.eigenvalues[i] as f64
                            * (stats.eigenvectors[i][c] * stats.eigenvectors[i][d]) as f64
                    })
                    .sum();
                let tolerance = 0.03 * want.abs() + 0.005;
                assert!(
                    (got - want).abs() < tolerance,
                    "cov[{c}][{d}] {got} want {want}"
                );
            }
        }
        // sigma 0 means no noise at all.
        assert_eq!(pca_colour_shift(&mut rng, &stats, 0.0), [0.0; 3]);
    }
}
