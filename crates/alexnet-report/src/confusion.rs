//! The confusion matrix as a heat map (row = true class, column = predicted class, shaded by the
//! share of the row), and the per-class accuracy as bars sorted from worst to best.

use std::path::Path;

use plotters::prelude::*;

use crate::canvas::{Canvas, FONT, plot_error};
use crate::error::ReportError;
use crate::page::Picture;

/// Above this many classes the heat map has no class names (they would not be legible).
const MAX_LABELLED_CLASSES: usize = 40;

/// White for 0, deep blue for 1.
fn shade(fraction: f64) -> RGBColor {
    let f = fraction.clamp(0.0, 1.0);
    let channel = |light: f64, dark: f64| (light + (dark - light) * f).round() as u8;
    RGBColor(
        channel(255.0, 8.0),
        channel(255.0, 48.0),
        channel(255.0, 107.0),
    )
}

/// Where the heat map's cells go: (left edge, top edge, cell side) in pixels.
pub fn confusion_layout(class_names: &[String]) -> (i32, i32, i32) {
    let n = class_names.len().max(1);
    let longest = class_names
        .iter()
        .map(|name| name.chars().count().min(26))
        .max()
        .unwrap_or(0);
    let left = if n <= MAX_LABELLED_CLASSES {
        40 + 8 * longest as i32
    } else {
        40
    };
    (left, 40, (640 / n).clamp(1, 48) as i32)
}

/// `confusion[true][predicted]` counts as a heat map PNG `dir/file`, rows labelled with
/// `class_names` and columns with class numbers.
pub fn draw_confusion(
    confusion: &[Vec<usize>],
    class_names: &[String],
    dir: &Path,
    file: &str,
) -> Result<Picture, ReportError> {
    let n = confusion.len().max(1);
    let labelled = n <= MAX_LABELLED_CLASSES;
    let (left, top, cell) = confusion_layout(class_names);
    let width = (left + cell * n as i32 + 20) as u32;
    let height = (top + cell * n as i32 + 50) as u32;
    // The title needs this much room even when the matrix is small.
    let width = width.max(600);
    let mut canvas = Canvas::new(width, height);
    {
        let root = canvas.area();
        let text = (FONT, 13).into_font();
        let title =
            "confusion matrix (rows: true class, columns: predicted; shade: share of the row)";
        root.draw(&Text::new(title, (10, 12), (FONT, 14).into_font()))
            .map_err(plot_error)?;
        for (t, row) in confusion.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            let y = top + t as i32 * cell;
            if labelled {
                let name = class_names.get(t).map_or("", String::as_str);
                root.draw(&Text::new(
                    format!("{t:>2} {}", truncate(name, 26)),
                    (8, y + cell / 2 - 7),
                    text.clone(),
                ))
                .map_err(plot_error)?;
            }
            for (p, &count) in row.iter().enumerate() {
                let x = left + p as i32 * cell;
                let fraction = count as f64 / total;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    shade(fraction).filled(),
                ))
                .map_err(plot_error)?;
                if labelled && cell >= 28 && count > 0 {
                    let colour = if fraction > 0.5 { WHITE } else { BLACK };
                    root.draw(&Text::new(
                        count.to_string(),
                        (x + 4, y + cell / 2 - 7),
                        (FONT, 12).into_font().color(&colour),
                    ))
                    .map_err(plot_error)?;
                }
            }
        }
        let bottom = top + n as i32 * cell;
        root.draw(&Rectangle::new(
            [(left, top), (left + n as i32 * cell, bottom)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_error)?;
        if labelled {
            for p in 0..n {
                let x = left + p as i32 * cell + cell / 2 - 6;
                root.draw(&Text::new(p.to_string(), (x, bottom + 6), text.clone()))
                    .map_err(plot_error)?;
            }
        }
        root.draw(&Text::new(
            "predicted class",
            (left, bottom + 26),
            text.clone(),
        ))
        .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    canvas.save(dir, file)
}

/// Classes ordered from the lowest accuracy to the highest (ties by class index).
pub fn sorted_by_accuracy(accuracy: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..accuracy.len()).collect();
    order.sort_by(|&a, &b| accuracy[a].total_cmp(&accuracy[b]).then(a.cmp(&b)));
    order
}

/// Per-class accuracy as horizontal bars, worst class first, at `path`. With many classes only
/// the `limit` worst and `limit` best are drawn. Written as `dir/file`.
pub fn draw_per_class(
    accuracy: &[f64],
    class_names: &[String],
    limit: usize,
    dir: &Path,
    file: &str,
) -> Result<Picture, ReportError> {
    let order = sorted_by_accuracy(accuracy);
    let shown: Vec<Option<usize>> = if order.len() > 2 * limit {
        order[..limit]
            .iter()
            .map(|&c| Some(c))
            .chain(std::iter::once(None))
            .chain(order[order.len() - limit..].iter().map(|&c| Some(c)))
            .collect()
    } else {
        order.iter().map(|&c| Some(c)).collect()
    };
    let row = 22;
    let (left, top, bar_width) = (230, 36, 360);
    let width = (left + bar_width + 70) as u32;
    let height = (top + row * shown.len() as i32 + 16) as u32;
    let mut canvas = Canvas::new(width, height);
    {
        let root = canvas.area();
        let text = (FONT, 13).into_font();
        root.draw(&Text::new(
            "per-class accuracy (centre crop), worst first",
            (10, 10),
            (FONT, 14).into_font(),
        ))
        .map_err(plot_error)?;
        for (i, class) in shown.iter().enumerate() {
            let y = top + i as i32 * row;
            let Some(class) = *class else {
                root.draw(&Text::new("...", (8, y + 3), text.clone()))
                    .map_err(plot_error)?;
                continue;
            };
            let name = class_names.get(class).map_or("", String::as_str);
            root.draw(&Text::new(
                format!("{class:>3} {}", truncate(name, 26)),
                (8, y + 3),
                text.clone(),
            ))
            .map_err(plot_error)?;
            let value = accuracy[class].clamp(0.0, 1.0);
            let length = (value * bar_width as f64).round() as i32;
            root.draw(&Rectangle::new(
                [(left, y + 2), (left + length.max(1), y + row - 4)],
                RGBColor(49, 130, 189).filled(),
            ))
            .map_err(plot_error)?;
            root.draw(&Text::new(
                format!("{value:.3}"),
                (left + length + 6, y + 3),
                text.clone(),
            ))
            .map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    canvas.save(dir, file)
}

fn truncate(name: &str, chars: usize) -> String {
    if name.chars().count() <= chars {
        name.to_string()
    } else {
        name.chars().take(chars - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_sorted_worst_first_with_ties_by_index() {
        assert_eq!(sorted_by_accuracy(&[0.5, 0.2, 0.9, 0.2]), vec![1, 3, 0, 2]);
    }

    #[test]
    fn a_full_row_is_the_darkest_cell_and_an_empty_one_white() {
        let dir = std::env::temp_dir().join(format!("alexnet-confusion-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = vec!["cat".to_string(), "dog".to_string()];
        let picture = draw_confusion(&[vec![4, 0], vec![1, 3]], &names, &dir, "c.png").unwrap();
        let image = image::open(dir.join(&picture.file)).unwrap().to_rgb8();
        assert_eq!(
            (image.width(), image.height()),
            (picture.width, picture.height)
        );
        // Cell (0, 0) holds the whole row: the darkest shade; cell (0, 1) none: white.
        let (left, top, cell) = confusion_layout(&names);
        let (left, top, cell) = (left as u32, top as u32, cell as u32);
        let centre = |row: u32, column: u32| {
            // Off the number drawn in the cell's left half.
            *image.get_pixel(left + column * cell + cell - 6, top + row * cell + cell - 6)
        };
        assert_eq!(centre(0, 0).0, [8, 48, 107]);
        assert_eq!(centre(0, 1).0, [255, 255, 255]);
        let (r, g, b) = shade(0.75).rgb();
        assert_eq!(centre(1, 1).0, [r, g, b]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
