//! `alexnet report RUN_DIR`: one HTML page of what a run learned (curves, confusion matrix,
//! per-class accuracy, conv1 kernels, predictions and nearest neighbours).

use std::path::PathBuf;

use alexnet_report::{ReportOptions, write_report};
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct ReportArgs {
    /// The run directory (`metrics.jsonl`, `best.safetensors` or `last.safetensors`).
    run_dir: PathBuf,
    /// The split to evaluate: a folder of class folders, or a directory made by `alexnet prepare`
    /// (its validation split; its training split then serves the neighbours). Default: the
    /// run's own data set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to write `report.html` and its pictures (default: RUN_DIR/report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Validation images shown with their top-5 labels and neighbours.
    #[arg(long, default_value_t = 8)]
    examples: usize,
    /// Nearest training images shown for each.
    #[arg(long, default_value_t = 6)]
    k: usize,
    /// Chooses the validation images shown.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// ImageNet synset words file (`n01440764 tench, Tinca tinca` per line) naming the classes
    /// (fixtures/imagenette-words.txt for Imagenette).
    #[arg(long)]
    synset_words: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value = "flex")]
    backend: String,
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let options = ReportOptions {
        data: args.data,
        out: args.out,
        examples: args.examples,
        neighbours: args.k,
        seed: args.seed,
        synset_words: args.synset_words,
        backend: args.backend,
        batch_size: args.batch_size,
        quiet: args.quiet,
        ..ReportOptions::new(args.run_dir)
    };
    let summary = write_report(&options)?;
    let index = match summary.index_built {
        Some(true) => "feature index built",
        Some(false) => "feature index reused",
        None => "no neighbours",
    };
    let sharing = match summary.neighbours_sharing {
        Some((same, shown)) => format!("; {same} of {shown} neighbours share the true class"),
        None => String::new(),
    };
    println!(
        "wrote {} (top-1 error {:.4}, top-5 error {:.4} on {} images; {index}{sharing}; {:.1} s)",
        summary.html.display(),
        summary.evaluation.top1_error,
        summary.evaluation.top5_error,
        summary.evaluation.images,
        summary.seconds
    );
    Ok(())
}
