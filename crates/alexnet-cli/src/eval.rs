//! `alexnet eval CKPT...`: top-1 and top-5 error on a split; several checkpoints are an ensemble
//! whose softmax outputs are averaged (Section 6, "averaging the predictions of five similar CNNs").

use std::path::PathBuf;

use alexnet_data::progress_bar;
use alexnet_data::{BadInputPolicy, PatchSource, TestViews, skipped_lines, with_classes_of};
use alexnet_eval::{checkpoint_split, ensemble_members, evaluate};
use alexnet_run::Checkpoint;
use alexnet_run::device;
use alexnet_run::resolve_checkpoint;
use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub struct EvalArgs {
    /// Checkpoint files or run directories (their best checkpoint); more than one is an ensemble.
    #[arg(required = true)]
    checkpoints: Vec<PathBuf>,
    /// Folder of the split to evaluate (`<class>/<image>`), or a directory made by `alexnet prepare`
    /// (with --split); default: the first checkpoint's validation split.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Split of a prepared --data directory, or of the checkpoint's data set (default: its
    /// validation split).
    #[arg(long)]
    split: Option<String>,
    /// Stop at the first unusable image instead of skipping it (and listing it).
    #[arg(long)]
    strict: bool,
    /// Average the softmax over ten views: four corners, centre, and their reflections (Section 4.1).
    #[arg(long)]
    ten_crop: bool,
    /// The views averaged: centre, centre-flip (the centre crop and its reflection: all that is
    /// left of the ten where the crop is the whole image) or ten-crop.
    #[arg(long, conflicts_with = "ten_crop")]
    views: Option<TestViews>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Print the per-class accuracy too.
    #[arg(long)]
    per_class: bool,
    /// Write the full report (errors, per-class accuracy, confusion matrix) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, default_value = "flex")]
    backend: String,
    #[arg(long)]
    quiet: bool,
}

/// `--ten-crop`, else `--views`, else the centre crop (clap refuses both flags at once).
pub fn chosen_views(ten_crop: bool, views: Option<TestViews>) -> TestViews {
    match ten_crop {
        true => TestViews::TenCrop,
        false => views.unwrap_or_default(),
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    let device = device(&args.backend, 0)?;
    let checkpoints = args
        .checkpoints
        .iter()
        .map(|path| {
            let path = resolve_checkpoint(path);
            Checkpoint::load(&path).map(|c| (path, c))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (first_path, first) = &checkpoints[0];
    for (path, checkpoint) in &checkpoints[1..] {
        if checkpoint.class_names != first.class_names {
            bail!(
                "{}: its classes differ from those of {}",
                path.display(),
                first_path.display()
            );
        }
    }
    let policy = BadInputPolicy::strict_if(args.strict);
    let load_set = |side: usize| {
        let (origin, set) = checkpoint_split(
            &first.recipe.data,
            args.data.as_deref(),
            args.split.as_deref(),
            side,
            &progress_bar(0, args.quiet, "decode"),
            policy,
        )?;
        let set = with_classes_of(set, &first.class_names, &origin)?;
        warn_skipped(set.as_ref());
        Ok((origin, set))
    };
    let views = chosen_views(args.ten_crop, args.views);
    let plan = views.plan();
    let (members, split) =
        ensemble_members(&checkpoints, &device, plan, args.batch_size, load_set)?;
    let report = evaluate(&members, &device, &progress_bar(0, args.quiet, "eval"))?;

    let views = views.label();
    let who = if members.len() > 1 {
        format!("ensemble of {}", members.len())
    } else {
        first_path.display().to_string()
    };
    println!(
        "{who} on {} ({} images, {views})",
        split.display(),
        report.images
    );
    println!(
        "top-1 error {:.4}  top-5 error {:.4}",
        report.top1_error, report.top5_error
    );
    if args.per_class {
        for (name, accuracy) in report.class_names.iter().zip(&report.per_class_accuracy) {
            println!("  {name:<24} accuracy {accuracy:.4}");
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Names, on standard error, the files a split left out as bad input.
pub fn warn_skipped(set: &dyn PatchSource) {
    let skipped = set.skipped();
    if skipped.is_empty() {
        return;
    }
    eprintln!("warning: skipped {} unusable files:", skipped.len());
    for line in skipped_lines(skipped, 20) {
        eprintln!("  {line}");
    }
}
