//! The first layer's kernels as colour tiles (Figure 3: "96 convolutional kernels of size
//! 11x11x3 learned by the first convolutional layer"). Each kernel is scaled to its own range, as
//! the paper's figure and Caffe's filter visualisation do, and the kernels of each tower form
//! their own grid: the paper saw one tower's kernels largely colour-agnostic and the other's
//! largely colour-specific (Section 6.1), which the colour share below puts in a number.

use image::{Rgb, RgbImage};

/// A convolution's weights, `[kernels, 3, k, k]` row-major.
#[derive(Debug, Clone)]
pub struct Kernels<'a> {
    pub values: &'a [f32],
    pub count: usize,
    pub side: usize,
}

impl<'a> Kernels<'a> {
    /// `values` of shape `shape`, which must be `[kernels, 3, k, k]`.
    pub fn new(values: &'a [f32], shape: &[usize]) -> Option<Self> {
        match *shape {
            [count, 3, side, side2] if side == side2 && values.len() == count * 3 * side * side => {
                Some(Self {
                    values,
                    count,
                    side,
                })
            }
            _ => None,
        }
    }

    /// Kernel `index`'s `3 x side x side` weights.
    pub fn kernel(&self, index: usize) -> &'a [f32] {
        let size = 3 * self.side * self.side;
        &self.values[index * size..(index + 1) * size]
    }

    /// Kernel `index` as RGB pixels scaled so that its smallest weight is 0 and its largest 255
    /// (a constant kernel is mid-grey).
    pub fn tile(&self, index: usize) -> RgbImage {
        let kernel = self.kernel(index);
        let (low, high) = kernel
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &w| {
                (lo.min(w), hi.max(w))
            });
        let range = high - low;
        let plane = self.side * self.side;
        let side = self.side as u32;
        RgbImage::from_fn(side, side, |x, y| {
            let at = y as usize * self.side + x as usize;
            let level = |channel: usize| {
                let w = kernel[channel * plane + at];
                if range > 0.0 {
                    ((w - low) / range * 255.0).round() as u8
                } else {
                    128
                }
            };
            Rgb([level(0), level(1), level(2)])
        })
    }

    /// How much of kernel `index`'s variation is colour: the share of its squared deviation that
    /// is not common to the three channels (0 for a grey kernel, up to 1 for a pure colour one).
    pub fn colour_share(&self, index: usize) -> f64 {
        let kernel = self.kernel(index);
        let plane = self.side * self.side;
        let mean = kernel.iter().map(|&w| w as f64).sum::<f64>() / kernel.len() as f64;
        let (mut total, mut colour) = (0.0, 0.0);
        for at in 0..plane {
            let values = [kernel[at], kernel[plane + at], kernel[2 * plane + at]].map(f64::from);
            let grey = values.iter().sum::<f64>() / 3.0;
            for v in values {
                total += (v - mean).powi(2);
                colour += (v - grey).powi(2);
            }
        }
        if total > 0.0 { colour / total } else { 0.0 }
    }

    /// Mean colour share of the kernels `range` (a tower's).
    pub fn mean_colour_share(&self, range: std::ops::Range<usize>) -> f64 {
        let n = range.len().max(1) as f64;
        range.map(|i| self.colour_share(i)).sum::<f64>() / n
    }

    /// The kernels `range` as a grid of `columns` tiles, each weight `scale` x `scale` pixels, with
    /// a gap of `scale` white pixels around every tile.
    pub fn grid(&self, range: std::ops::Range<usize>, columns: usize, scale: u32) -> RgbImage {
        let count = range.len();
        let columns = columns.clamp(1, count.max(1));
        let rows = count.div_ceil(columns).max(1);
        let pitch = self.side as u32 * scale + scale;
        let mut grid = RgbImage::from_pixel(
            columns as u32 * pitch + scale,
            rows as u32 * pitch + scale,
            Rgb([255, 255, 255]),
        );
        for (position, index) in range.enumerate() {
            let tile = self.tile(index);
            let left = (position % columns) as u32 * pitch + scale;
            let top = (position / columns) as u32 * pitch + scale;
            for (x, y, pixel) in tile.enumerate_pixels() {
                for dy in 0..scale {
                    for dx in 0..scale {
                        grid.put_pixel(left + x * scale + dx, top + y * scale + dy, *pixel);
                    }
                }
            }
        }
        grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 3x3 kernels: the first a red vertical bar on black (red channel 1 in the middle
    /// column, everything else 0); the second grey noise.
    fn kernels() -> Vec<f32> {
        let mut values = vec![0.0; 2 * 27];
        for y in 0..3 {
            values[y * 3 + 1] = 1.0;
        }
        for (i, v) in values[27..36].iter_mut().enumerate() {
            *v = i as f32 * 0.1 - 0.4;
        }
        let grey: Vec<f32> = values[27..36].to_vec();
        values[36..45].copy_from_slice(&grey);
        values[45..54].copy_from_slice(&grey);
        values
    }

    #[test]
    fn a_known_kernel_renders_as_its_pattern() {
        let values = kernels();
        let kernels = Kernels::new(&values, &[2, 3, 3, 3]).unwrap();
        let tile = kernels.tile(0);
        for y in 0..3 {
            assert_eq!(tile.get_pixel(1, y).0, [255, 0, 0], "the bar is pure red");
            assert_eq!(tile.get_pixel(0, y).0, [0, 0, 0]);
            assert_eq!(tile.get_pixel(2, y).0, [0, 0, 0]);
        }
        // In the grid, scaled by 4 with a 4-pixel gap: the first tile starts at (4, 4).
        let grid = kernels.grid(0..2, 2, 4);
        assert_eq!((grid.width(), grid.height()), (2 * 16 + 4, 16 + 4));
        assert_eq!(grid.get_pixel(4 + 4 + 1, 4 + 2).0, [255, 0, 0]);
        assert_eq!(grid.get_pixel(4 + 1, 4 + 1).0, [0, 0, 0]);
        assert_eq!(grid.get_pixel(1, 1).0, [255, 255, 255], "the gap");
        // The second tile: grey, darkest at its first weight, brightest at its last.
        let second = 4 + 16;
        let first = grid.get_pixel(second, 4).0;
        let last = grid.get_pixel(second + 11, 4 + 11).0;
        assert_eq!(first, [0, 0, 0]);
        assert_eq!(last, [255, 255, 255]);
    }

    #[test]
    fn colour_share_tells_grey_from_colour() {
        let values = kernels();
        let kernels = Kernels::new(&values, &[2, 3, 3, 3]).unwrap();
        assert!(kernels.colour_share(1) < 1e-12, "a grey kernel");
        // The red bar: the mean is 3/27 = 1/9, so the total squared deviation is
        // 3 (8/9)^2 + 24 (1/9)^2 = 216/81; each bar pixel (1, 0, 0) is off its grey 1/3 by
        // (2/3)^2 + 2 (1/3)^2 = 2/3, three of them: 2. Share: 2 / (216/81) = 0.75.
        let share = kernels.colour_share(0);
        assert!((share - 0.75).abs() < 1e-9, "{share}");
        assert!(Kernels::new(&values, &[2, 3, 3, 2]).is_none());
    }

    #[test]
    fn random_kernels_have_a_colour_share_of_two_thirds() {
        // Independent weights: two of each pixel's three degrees of freedom are colour (the
        // baseline docs/results.md compares the trained towers with).
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let normal = Normal::new(0.0f32, 0.01).unwrap();
        let values: Vec<f32> = (0..96 * 3 * 121).map(|_| normal.sample(&mut rng)).collect();
        let kernels = Kernels::new(&values, &[96, 3, 11, 11]).unwrap();
        let share = kernels.mean_colour_share(0..96);
        assert!((share - 2.0 / 3.0).abs() < 0.01, "{share}");
    }
}
