//! One file to one square patch (Section 2): "we down-sampled the images to a fixed resolution of
//! 256x256: given a rectangular image, we first rescaled the image such that the shorter side was of
//! length 256, and then cropped out the central 256x256 patch".
//!
//! Real collections hold files that are not what their names say. Every file either decodes
//! correctly (any colour model to RGB: grayscale, palette, 16-bit, alpha dropped, CMYK and YCCK
//! JPEG; EXIF orientation applied) or fails with a [`DataError`] that names it and says why:
//! unreadable, empty, not an image, truncated or corrupt, or a decompression bomb (a declared size
//! over [`MAX_PIXELS`]). What happens to a failed file is the caller's [`BadInputPolicy`](crate::BadInputPolicy).

use std::io::Cursor;
use std::path::Path;

use fast_image_resize as fir;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use crate::error::DataError;

/// The largest image accepted, in pixels: Pillow's decompression-bomb limit (2 x 89,478,485). A
/// file that declares more is refused before any pixel is decoded.
pub const MAX_PIXELS: u64 = 178_956_970;

/// Decodes `path`, rescales its shorter side to `side` and returns the central `side` x `side`
/// patch as interleaved RGB bytes (row-major, `[side, side, 3]`).
pub fn load_square_patch(path: &Path, side: usize) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let rgb = decode_rgb(&bytes).map_err(|reason| DataError::Undecodable {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(square_patch(rgb, side).into_raw())
}

/// Decodes an encoded image held in memory to upright RGB, or says why it cannot.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    let format = image::guess_format(bytes).map_err(|_| {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!(
            "not an image: content starts with {} (no JPEG, PNG, BMP or WebP signature)",
            head.join(" ")
        )
    })?;
    match format {
        ImageFormat::Jpeg => decode_jpeg(bytes),
        other => decode_other(bytes, other),
    }
}

fn check_size(width: usize, height: usize) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("declares an empty size {width}x{height}"));
    }
    let pixels = width as u64 * height as u64;
    if pixels > MAX_PIXELS {
        return Err(format!(
            "declares {width}x{height} = {pixels} pixels, over the decompression-bomb limit of {MAX_PIXELS}"
        ));
    }
    Ok(())
}

/// JPEG through zune-jpeg in strict mode, so a truncated or corrupt stream is an error rather than
/// an image padded with grey. zune converts grayscale, CMYK and YCCK to RGB.
fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, String> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|e| format!("corrupt JPEG header: {}", e.to_string().trim()))?;
    let (width, height) = decoder.dimensions().ok_or("JPEG without dimensions")?;
    check_size(width, height)?;
    let orientation = decoder
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder
        .decode()
        .map_err(|e| format!("truncated or corrupt JPEG: {}", e.to_string().trim()))?;
    let rgb = RgbImage::from_raw(width as u32, height as u32, pixels)
        .ok_or("JPEG decoder returned fewer pixels than its header declares")?;
    Ok(upright(DynamicImage::ImageRgb8(rgb), orientation))
}

/// PNG, BMP and WebP through `image`, with its allocation limit on.
fn decode_other(bytes: &[u8], format: ImageFormat) -> Result<RgbImage, String> {
    let format_name = match format {
        ImageFormat::Png => "PNG".to_string(),
        ImageFormat::Bmp => "BMP".to_string(),
        ImageFormat::WebP => "WebP".to_string(),
        other => format!("{other:?}"),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("corrupt {format_name} header: {e}"))?;
    let (width, height) = decoder.dimensions();
    check_size(width as usize, height as usize)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("truncated or corrupt {format_name}: {e}"))?;
    Ok(upright(image, orientation))
}

/// Applies the EXIF orientation (a phone photo stored sideways is shown upright) and drops any alpha
/// channel, as Pillow's `convert("RGB")` does.
fn upright(mut image: DynamicImage, orientation: Orientation) -> RgbImage {
    image.apply_orientation(orientation);
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.into_rgb8(),
    }
}

/// Shorter side to `side` (bilinear with antialiasing, as Pillow's default), then the centre
/// `side` x `side` crop.
///
/// The central square is cut first and only it is resized: the same pixels as resizing the whole
/// image and cropping, without the work (or the memory, for a 1x5000 strip) of the parts thrown away.
/// fast_image_resize does the convolution with SIMD, ten times faster than `image`'s resize, which
/// was 80% of the time of a decode.
pub fn square_patch(image: RgbImage, side: usize) -> RgbImage {
    let (width, height) = image.dimensions();
    let side = side as u32;
    if width == side && height == side {
        return image;
    }
    let shorter = width.min(height);
    let source =
        fir::images::Image::from_vec_u8(width, height, image.into_raw(), fir::PixelType::U8x3)
            .expect("an RGB buffer of its own dimensions");
    let mut patch = fir::images::Image::new(side, side, fir::PixelType::U8x3);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear))
        .crop(
            (width - shorter) as f64 / 2.0,
            (height - shorter) as f64 / 2.0,
            shorter as f64,
            shorter as f64,
        );
    fir::Resizer::new()
        .resize(&source, &mut patch, &options)
        .expect("same pixel type, non-empty crop");
    RgbImage::from_raw(side, side, patch.into_vec()).expect("side x side RGB")
}

/// A square `[from, from, 3]` patch rescaled to `side` x `side` (a copy when the sides agree).
pub fn rescale_patch(patch: &[u8], from: usize, side: usize) -> Vec<u8> {
    if from == side {
        return patch.to_vec();
    }
    let image =
        RgbImage::from_raw(from as u32, from as u32, patch.to_vec()).expect("a whole patch");
    square_patch(image, side).into_raw()
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
    fn an_extreme_strip_is_cut_before_it_is_resized() {
        let strip = RgbImage::from_pixel(1, 50_000, image::Rgb([10, 20, 30]));
        let patch = square_patch(strip, 256);
        assert_eq!(patch.dimensions(), (256, 256));
        assert_eq!(patch.get_pixel(100, 200), &image::Rgb([10, 20, 30]));
    }

    #[test]
    fn undecodable_file_is_named() {
        let path = std::env::temp_dir().join(format!("alexnet-bad-{}.jpg", std::process::id()));
        std::fs::write(&path, b"this is not a jpeg").unwrap();
        let err = load_square_patch(&path, 8).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("not an image"),
            "{err}"
        );
    }
}
