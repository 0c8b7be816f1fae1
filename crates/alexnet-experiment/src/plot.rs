//! The plot of a claim: each arm's validation top-1 error (solid) and training top-1 error
//! (dashed) against epochs, averaged over its seeds, as Figure 1 draws its two curves. A row with
//! no curve (a 10-crop or ensemble arm, a classical baseline) is a dotted level line at its
//! validation error.

use std::path::Path;

use alexnet_report::ReportError;
use alexnet_report::canvas::{Canvas, FONT, PALETTE, plot_error};
use plotters::prelude::*;

use crate::summary::Results;

/// `(epoch, mean)` of `value` over the arm's runs, for the epochs every run has.
fn mean_curve(
    results: &Results,
    arm: &str,
    value: fn(&alexnet_run::EpochMetrics) -> Option<f64>,
) -> Vec<(f64, f64)> {
    let runs: Vec<_> = results.runs.iter().filter(|r| r.arm == arm).collect();
    let epochs = runs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
    // An epoch that some run did not measure (`run.validate_every`) has no point.
    (0..epochs)
        .filter_map(|e| {
            let values: Option<Vec<f64>> = runs.iter().map(|r| value(&r.curve[e])).collect();
            let values = values?;
            Some((
                (e + 1) as f64,
                values.iter().sum::<f64>() / runs.len() as f64,
            ))
        })
        .collect()
}

/// Draws `dir/errors.png` and returns its file name.
pub fn draw_errors(results: &Results, dir: &Path) -> Result<String, ReportError> {
    let file = "errors.png";
    let mut canvas = Canvas::new(900, 500);
    {
        let root = canvas.area();
        root.fill(&WHITE).map_err(plot_error)?;
        let last_epoch = results
            .runs
            .iter()
            .map(|r| r.curve.len())
            .max()
            .unwrap_or(1)
            .max(2);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: top-1 error (solid: validation, dashed: training)",
                    results.experiment
                ),
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(1.0..last_epoch as f64, 0.0..1.0)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("top-1 error")
            .label_style((FONT, 13))
            .draw()
            .map_err(plot_error)?;
        for (i, arm) in results.arms.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let val = mean_curve(results, &arm.arm, |m| m.val_top1_error);
            let train = mean_curve(results, &arm.arm, |m| Some(m.train_top1_error));
            if val.is_empty() {
                let Some(level) = arm.val_top1_error.map(|s| s.mean) else {
                    continue;
                };
                let line = [(1.0, level), (last_epoch as f64, level)];
                chart
                    .draw_series(DashedLineSeries::new(line, 2, 4, colour.stroke_width(2)))
                    .map_err(plot_error)?
                    .label(format!("{} (level)", arm.arm))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
                continue;
            }
            chart
                .draw_series(LineSeries::new(val, colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(arm.arm.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(DashedLineSeries::new(train, 6, 4, colour.stroke_width(1)))
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    canvas.save(dir, file)?;
    Ok(file.to_string())
}
