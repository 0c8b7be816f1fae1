//! Where the plots are drawn: an RGB buffer that plotters' bitmap backend draws into, saved as
//! PNG with the `image` crate. Text is drawn with the Go font shipped in `fonts/` (through
//! plotters' pure-Rust `ab_glyph` renderer), so no system font or C library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::ReportError;

/// Matplotlib's first colours, familiar from every other training plot: the curves' lines, in
/// order, in the report's plots and the experiments'.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The family every plot's text uses.
pub const FONT: &str = "sans-serif";

static GO_REGULAR: &[u8] = include_bytes!("../fonts/Go-Regular.ttf");

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if register_font(FONT, FontStyle::Normal, GO_REGULAR).is_err() {
            panic!("the Go font shipped in fonts/ is a valid TrueType file");
        }
    });
}

pub fn plot_error(error: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(error.to_string())
}

/// A white `width` x `height` picture.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Self {
        register_fonts();
        Self {
            width,
            height,
            pixels: vec![255; width as usize * height as usize * 3],
        }
    }

    /// The whole canvas as a plotters drawing area.
    pub fn area(&mut self) -> DrawingArea<BitMapBackend<'_>, plotters::coord::Shift> {
        BitMapBackend::with_buffer(&mut self.pixels, (self.width, self.height)).into_drawing_area()
    }

    /// Writes the canvas as `dir/file` and describes it for the page.
    pub fn save(self, dir: &Path, file: &str) -> Result<crate::page::Picture, ReportError> {
        let image = image::RgbImage::from_raw(self.width, self.height, self.pixels)
            .expect("the buffer is width x height x 3");
        save_picture(&image, dir, file)
    }
}

/// Writes `image` as a PNG file, naming the file in the error.
pub fn save_png(image: &image::RgbImage, path: &Path) -> Result<(), ReportError> {
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| ReportError::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Writes `image` as `dir/file` and describes it for the page.
pub fn save_picture(
    image: &image::RgbImage,
    dir: &Path,
    file: &str,
) -> Result<crate::page::Picture, ReportError> {
    save_png(image, &dir.join(file))?;
    Ok(crate::page::Picture {
        file: file.to_string(),
        width: image.width(),
        height: image.height(),
    })
}
