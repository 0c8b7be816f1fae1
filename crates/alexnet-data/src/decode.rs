//! One file to one square patch (Section 2): "we down-sampled the images to a fixed resolution of
//! 256x256: given a rectangular image, we first rescaled the image such that the shorter side was of
//! length 256, and then cropped out the central 256x256 patch".

use std::path::Path;

use image::imageops::FilterType;
use image::{ImageReader, RgbImage};

use crate::error::DataError;

/// Decodes `path` (any colour type becomes RGB), rescales the shorter side to `side` and returns the
/// central `side` x `side` patch as interleaved RGB bytes (row-major, `[side, side, 3]`).
pub fn load_square_patch(path: &Path, side: usize) -> Result<Vec<u8>, DataError> {
    let undecodable = |reason: String| DataError::Undecodable {
        path: path.to_path_buf(),
        reason,
    };
    let reader = ImageReader::open(path)
        .map_err(|e| DataError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .with_guessed_format()
        .map_err(|e| undecodable(e.to_string()))?;
    let rgb = reader
        .decode()
        .map_err(|e| undecodable(e.to_string()))?
        .into_rgb8();
    Ok(square_patch(rgb, side).into_raw())
}

/// Shorter side to `side` (bilinear, as PIL's default), then the centre `side` x `side` crop.
pub fn square_patch(image: RgbImage, side: usize) -> RgbImage {
    let (width, height) = image.dimensions();
    let side = side as u32;
    if width == side && height == side {
        return image;
    }
    let shorter = width.min(height) as f64;
    let scaled_w = ((width as f64 * side as f64 / shorter).round() as u32).max(side);
    let scaled_h = ((height as f64 * side as f64 / shorter).round() as u32).max(side);
    let scaled = image::imageops::resize(&image, scaled_w, scaled_h, FilterType::Triangle);
    let left = (scaled_w - side) / 2;
    let top = (scaled_h - side) / 2;
    image::imageops::crop_imm(&scaled, left, top, side, side).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_side_is_rescaled_then_centre_cropped() {
        // A 40x20 image whose left half is red and right half blue, with a green centre column.
        let mut image = RgbImage::new(40, 20);
        for (x, _, p) in image.enumerate_pixels_mut() {
            *p = if x == 19 || x == 20 {
                image::Rgb([0, 255, 0])
            } else if x < 20 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            };
        }
        let patch = square_patch(image, 10);
        assert_eq!(patch.dimensions(), (10, 10));
        // 40x20 -> 20x10, centre 10 columns are source columns 10..30: red left, blue right.
        assert_eq!(patch.get_pixel(0, 5)[0], 255);
        assert_eq!(patch.get_pixel(9, 5)[2], 255);
        assert!(patch.get_pixel(5, 5)[1] > 100, "the green centre survives");
    }

    #[test]
    fn undecodable_file_is_named() {
        let path = std::env::temp_dir().join(format!("alexnet-bad-{}.jpg", std::process::id()));
        std::fs::write(&path, b"this is not a jpeg").unwrap();
        let err = load_square_patch(&path, 8).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("cannot decode"),
            "{err}"
        );
    }
}
