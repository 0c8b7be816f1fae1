//! The report's header table: model, data, recipe, time, speed and errors of a run.

use alexnet_eval::EvalReport;
use alexnet_run::metrics::last_validated;
use alexnet_run::{Checkpoint, EpochMetrics};

use crate::page::HeaderRow;

fn hours_minutes_seconds(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}h {:02}m {:02}s ({s} s)", s / 3600, s / 60 % 60, s % 60)
}

fn row(id: &str, label: &str, value: String) -> HeaderRow {
    HeaderRow {
        id: id.into(),
        label: label.into(),
        value,
    }
}

/// The header table: recipe, data, size, time, speed and errors.
pub fn header(
    checkpoint: &Checkpoint,
    parameters: usize,
    metrics: &[EpochMetrics],
    evaluation: &EvalReport,
    train_images: Option<usize>,
) -> Vec<HeaderRow> {
    let recipe = &checkpoint.recipe;
    let last = metrics.last().expect("a run with metrics has a last epoch");
    // Over the validated epochs (`run.validate_every`); the last epoch of a run always is.
    let best = metrics
        .iter()
        .filter_map(|m| Some((m, m.val_errors()?)))
        .min_by(|a, b| a.1[0].total_cmp(&b.1[0]));
    let latest = last_validated(metrics);
    // "0.2108", or "0.2108 (epoch 10)" where the last epoch was not validated.
    let latest_error = |which: usize| match latest {
        None => "-".to_string(),
        Some((m, errors)) if m.epoch == last.epoch => format!("{:.4}", errors[which]),
        Some((m, errors)) => format!("{:.4} (epoch {})", errors[which], m.epoch),
    };
    let mean_rate = metrics.iter().map(|m| m.images_per_second).sum::<f64>() / metrics.len() as f64;
    let model = &recipe.model;
    vec![
        row(
            "model",
            "model",
            format!(
                "{} ({} classes, activation {}, dropout {})",
                model.arch,
                checkpoint.class_names.len(),
                format!("{:?}", model.activation).to_lowercase(),
                model.dropout
            ),
        ),
        row("parameters", "parameters", format_count(parameters)),
        row(
            "data",
            "data set",
            format!(
                "{} ({}{} classes)",
                recipe.data.dir.display(),
                train_images.map_or(String::new(), |n| format!(
                    "{} training images, ",
                    format_count(n)
                )),
                checkpoint.class_names.len()
            ),
        ),
        row(
            "recipe",
            "recipe",
            format!(
                "batch {}, lr {} (now {:.0e}), momentum {}, weight decay {}, {} / {} epochs",
                recipe.optim.batch_size,
                recipe.optim.lr,
                checkpoint.progress.schedule.lr,
                recipe.optim.momentum,
                recipe.optim.weight_decay,
                last.epoch,
                recipe.run.epochs
            ),
        ),
        row("epochs-done", "epochs done", last.epoch.to_string()),
        row(
            "wall-time",
            "wall time",
            hours_minutes_seconds(last.wall_seconds),
        ),
        row(
            "throughput",
            "training throughput",
            format!(
                "{mean_rate:.1} img/s (mean over epochs; last {:.1})",
                last.images_per_second
            ),
        ),
        row(
            "final-val-top1",
            "last epoch: val top-1 error",
            latest_error(0),
        ),
        row(
            "final-val-top5",
            "last epoch: val top-5 error",
            latest_error(1),
        ),
        row(
            "best-val-top1",
            "best epoch: val top-1 error",
            best.map_or("-".to_string(), |(m, errors)| {
                format!("{:.4} (epoch {})", errors[0], m.epoch)
            }),
        ),
        row(
            "eval-top1",
            "this evaluation: top-1 error",
            format!("{:.4}", evaluation.top1_error),
        ),
        row(
            "eval-top5",
            "this evaluation: top-5 error",
            format!("{:.4}", evaluation.top5_error),
        ),
        row(
            "eval-images",
            "images evaluated",
            evaluation.images.to_string(),
        ),
    ]
}

fn format_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(format_count(60_965_224), "60,965,224");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
    }
}
