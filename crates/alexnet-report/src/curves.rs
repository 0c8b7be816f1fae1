//! Training curves, as TensorBoard shows a run: the training loss, and the training and
//! validation errors, against epochs, with the epochs where the learning rate was divided by 10
//! (Section 5) marked. Read from `metrics.jsonl`, so a run that is still training shows what it
//! has done so far.

use std::path::Path;

use alexnet_run::EpochMetrics;
use plotters::prelude::*;

use crate::canvas::{Canvas, FONT, PALETTE, plot_error};
use crate::error::ReportError;
use crate::page::Picture;

const TRAIN: RGBColor = PALETTE[0];
const VAL_TOP1: RGBColor = PALETTE[1];
const VAL_TOP5: RGBColor = PALETTE[2];

/// A learning-rate drop: `after_epoch` was the last epoch at `from`; the next one trained at `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrDrop {
    pub after_epoch: usize,
    pub from: f64,
    pub to: f64,
}

/// The data series the curves are drawn from, `(epoch, value)` each.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curves {
    pub train_loss: Vec<(f64, f64)>,
    /// On the augmented training batches, as they were trained on.
    pub train_top1_error: Vec<(f64, f64)>,
    pub val_top1_error: Vec<(f64, f64)>,
    pub val_top5_error: Vec<(f64, f64)>,
    pub lr_drops: Vec<LrDrop>,
}

impl Curves {
    /// The series of `metrics` (one line per epoch, in epoch order).
    pub fn from_metrics(metrics: &[EpochMetrics]) -> Self {
        let series = |value: fn(&EpochMetrics) -> f64| {
            metrics
                .iter()
                .map(|m| (m.epoch as f64, value(m)))
                .collect::<Vec<_>>()
        };
        // Only the epochs that were validated (`run.validate_every`).
        let validated = |value: fn(&EpochMetrics) -> Option<f64>| {
            metrics
                .iter()
                .filter_map(|m| Some((m.epoch as f64, value(m)?)))
                .collect::<Vec<_>>()
        };
        let lr_drops = metrics
            .windows(2)
            .filter(|pair| pair[1].lr < pair[0].lr)
            .map(|pair| LrDrop {
                after_epoch: pair[0].epoch,
                from: pair[0].lr,
                to: pair[1].lr,
            })
            .collect();
        Self {
            train_loss: series(|m| m.train_loss),
            train_top1_error: series(|m| m.train_top1_error),
            val_top1_error: validated(|m| m.val_top1_error),
            val_top5_error: validated(|m| m.val_top5_error),
            lr_drops,
        }
    }

    fn last_epoch(&self) -> f64 {
        self.train_loss.last().map_or(1.0, |&(epoch, _)| epoch)
    }

    /// Draws the loss (left) and the errors (right) into a `width` x `height` PNG `dir/file`.
    pub fn draw(
        &self,
        dir: &Path,
        file: &str,
        width: u32,
        height: u32,
    ) -> Result<Picture, ReportError> {
        let mut canvas = Canvas::new(width, height);
        {
            let root = canvas.area();
            root.fill(&WHITE).map_err(plot_error)?;
            let (left, right) = root.split_horizontally(width / 2);
            let max_loss = self
                .train_loss
                .iter()
                .map(|&(_, loss)| loss)
                .filter(|loss| loss.is_finite())
                .fold(0.0, f64::max)
                .max(1e-3);
            let panel = Panel {
                title: "training loss",
                y_label: "cross-entropy",
                y_max: max_loss * 1.05,
                last_epoch: self.last_epoch(),
            };
            panel.draw(
                &left,
                &[(&self.train_loss, "train loss", TRAIN)],
                &self.lr_drops,
            )?;
            let panel = Panel {
                title: "error",
                y_label: "error rate",
                y_max: 1.0,
                ..panel
            };
            panel.draw(
                &right,
                &[
                    (&self.train_top1_error, "train top-1", TRAIN),
                    (&self.val_top1_error, "val top-1", VAL_TOP1),
                    (&self.val_top5_error, "val top-5", VAL_TOP5),
                ],
                &self.lr_drops,
            )?;
            root.present().map_err(plot_error)?;
        }
        canvas.save(dir, file)
    }
}

/// One chart of the curves.
#[derive(Clone, Copy)]
struct Panel {
    title: &'static str,
    y_label: &'static str,
    y_max: f64,
    last_epoch: f64,
}

/// A curve: its points, its name in the legend, its colour.
type Series<'a> = (&'a Vec<(f64, f64)>, &'a str, RGBColor);

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

impl Panel {
    fn draw(
        &self,
        area: &Area<'_>,
        series: &[Series<'_>],
        drops: &[LrDrop],
    ) -> Result<(), ReportError> {
        // One epoch is still a line from 0.5 to 1.5, not a point on an empty axis.
        let x_range = 0.5..self.last_epoch.max(1.0) + 0.5;
        let mut chart = ChartBuilder::on(area)
            .caption(self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x_range, 0.0..self.y_max)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|epoch| format!("{epoch:.0}"))
            .x_labels(self.last_epoch.clamp(2.0, 12.0) as usize)
            .x_desc("epoch")
            .y_desc(self.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(plot_error)?;
        for drop in drops {
            // Between the last epoch at the old rate and the first at the new one.
            let x = drop.after_epoch as f64 + 0.5;
            let style = RGBColor(150, 150, 150).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, self.y_max)],
                    6,
                    4,
                    style,
                ))
                .map_err(plot_error)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("lr {:.0e}", drop.to),
                    (x, self.y_max * 0.97),
                    (FONT, 12).into_font(),
                )))
                .map_err(plot_error)?;
        }
        for &(points, label, colour) in series {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&point| Circle::new(point, 3, colour.filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(plot_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, lr: f64, val_top1_error: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            step: epoch as u64 * 10,
            lr,
            train_loss: 2.0 / epoch as f64,
            train_top1_error: 0.8 / epoch as f64,
            val_top1_error: Some(val_top1_error),
            val_top5_error: Some(val_top1_error / 2.0),
            images_per_second: 100.0,
            epoch_seconds: 10.0,
            wall_seconds: 10.0 * epoch as f64,
        }
    }

    #[test]
    fn a_learning_rate_drop_is_marked_after_the_last_epoch_at_the_old_rate() {
        let metrics = [
            epoch(1, 0.01, 0.6),
            epoch(2, 0.01, 0.5),
            epoch(3, 0.01, 0.5),
            epoch(4, 0.001, 0.4),
            epoch(5, 0.001, 0.39),
            epoch(6, 0.0001, 0.38),
        ];
        let curves = Curves::from_metrics(&metrics);
        assert_eq!(
            curves.lr_drops,
            vec![
                LrDrop {
                    after_epoch: 3,
                    from: 0.01,
                    to: 0.001
                },
                LrDrop {
                    after_epoch: 5,
                    from: 0.001,
                    to: 0.0001
                },
            ]
        );
        assert_eq!(curves.val_top1_error[3], (4.0, 0.4));
        assert_eq!(curves.val_top5_error[0], (1.0, 0.3));
        assert_eq!(curves.train_loss[1], (2.0, 1.0));
        assert_eq!(curves.train_top1_error.len(), 6);
        // An epoch not validated has a training point and no validation point.
        let mut sparse = metrics.to_vec();
        sparse[1].val_top1_error = None;
        sparse[1].val_top5_error = None;
        let curves = Curves::from_metrics(&sparse);
        assert_eq!(curves.train_loss.len(), 6);
        let epochs: Vec<f64> = curves.val_top1_error.iter().map(|p| p.0).collect();
        assert_eq!(epochs, [1.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(curves.val_top5_error.len(), 5);
    }

    #[test]
    fn a_constant_rate_has_no_drop_and_the_plot_is_written() {
        let metrics = [epoch(1, 0.01, 0.6), epoch(2, 0.01, 0.5)];
        let curves = Curves::from_metrics(&metrics);
        assert!(curves.lr_drops.is_empty());
        let dir = std::env::temp_dir().join(format!("alexnet-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let picture = curves.draw(&dir, "curves.png", 640, 300).unwrap();
        let image = image::open(dir.join(&picture.file)).unwrap();
        assert_eq!((image.width(), image.height()), (640, 300));
        assert_eq!((picture.width, picture.height), (640, 300));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
