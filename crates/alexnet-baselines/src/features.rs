//! Feature vectors of stored patches: pixels, or HOG and a colour histogram, one row per image.

use alexnet_data::{DataError, PatchSource};
use image::RgbImage;
use image::imageops::{FilterType, grayscale, resize};
use imageproc::hog::{HogOptions, hog};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// Bins per channel of the joint RGB histogram: 4 x 4 x 4 = 64 colours.
const COLOUR_BINS: usize = 4;
/// HOG of Dalal & Triggs: 9 unsigned orientations, blocks of 2 x 2 cells moved one cell at a time.
const ORIENTATIONS: usize = 9;
const BLOCK_SIDE: usize = 2;
/// Cells across the image, whatever its side (8 x 8 cells of 4 pixels on CIFAR-10's 32).
const CELLS_ACROSS: usize = 8;

/// Image `index` of `source`, resized to `side` x `side`.
fn image_at(source: &dyn PatchSource, index: usize, side: usize) -> Result<RgbImage, DataError> {
    let stored = source.side() as u32;
    let patch = source.patch(index)?.into_owned();
    let image =
        RgbImage::from_raw(stored, stored, patch).expect("a patch is side x side x 3 bytes");
    Ok(if stored as usize == side {
        image
    } else {
        resize(&image, side as u32, side as u32, FilterType::Triangle)
    })
}

/// One row an image, each written in place by `row` (in parallel); `width` values a row.
fn rows(
    source: &dyn PatchSource,
    width: usize,
    row: impl Fn(usize, &mut [f32]) -> Result<(), DataError> + Sync,
) -> Result<Array2<f32>, DataError> {
    let mut rows = Array2::zeros((source.len(), width));
    rows.as_slice_mut()
        .expect("a fresh array is contiguous")
        .par_chunks_mut(width)
        .enumerate()
        .try_for_each(|(i, out)| row(i, out))?;
    Ok(rows)
}

/// RGB values in 0..1 of every image at `side` x `side`, row-major, channels interleaved.
pub fn pixels(source: &dyn PatchSource, side: usize) -> Result<Array2<f32>, DataError> {
    rows(source, side * side * 3, |i, out| {
        let image = image_at(source, i, side)?;
        for (o, &v) in out.iter_mut().zip(image.as_raw()) {
            *o = v as f32 / 255.0;
        }
        Ok(())
    })
}

fn hog_options(side: usize) -> HogOptions {
    HogOptions::new(ORIENTATIONS, false, side / CELLS_ACROSS, BLOCK_SIDE, 1)
}

/// Length of [`hog_colour`]'s rows (the same at every side: the cells scale with it).
pub fn hog_colour_width() -> usize {
    let blocks = CELLS_ACROSS - BLOCK_SIDE + 1;
    blocks * blocks * BLOCK_SIDE * BLOCK_SIDE * ORIENTATIONS + COLOUR_BINS.pow(3)
}

/// HOG of the grey image at `side` x `side` (each block's histogram of unit length), then the share
/// of the image's pixels in each of 64 colour bins.
pub fn hog_colour(source: &dyn PatchSource, side: usize) -> Result<Array2<f32>, DataError> {
    let width = hog_colour_width();
    rows(source, width, |i, out| {
        let image = image_at(source, i, side)?;
        let gradients = hog(&grayscale(&image), hog_options(side))
            .expect("side is a multiple of the cells across, checked by the caller");
        let (hog_part, colours) = out.split_at_mut(gradients.len());
        hog_part.copy_from_slice(&gradients);
        let share = 1.0 / (side * side) as f32;
        for p in image.pixels() {
            let bin = |v: u8| v as usize * COLOUR_BINS / 256;
            colours[(bin(p[0]) * COLOUR_BINS + bin(p[1])) * COLOUR_BINS + bin(p[2])] += share;
        }
        Ok(())
    })
}

/// Each feature shifted and scaled to mean 0 and standard deviation 1 over the training rows (a
/// constant feature is only shifted): the scaling the linear learner needs to converge.
pub struct Standardiser {
    mean: ndarray::Array1<f32>,
    scale: ndarray::Array1<f32>,
}

impl Standardiser {
    pub fn fit(train: &Array2<f32>) -> Self {
        let mean = train
            .mean_axis(Axis(0))
            .expect("at least one training image");
        let std = train.std_axis(Axis(0), 0.0);
        let scale = std.mapv(|s| if s > 1e-6 { 1.0 / s } else { 1.0 });
        Self { mean, scale }
    }

    pub fn apply(&self, rows: &mut Array2<f32>) {
        rows.axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut row| {
                row -= &self.mean;
                row *= &self.scale;
            });
    }
}
