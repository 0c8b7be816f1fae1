//! `alexnet prepare SRC OUT`: packs a data set into shards with its mean image and RGB PCA, so
//! training, evaluation and benchmarks read it in place. Re-run after an interruption, it keeps
//! the finished shards and completes the rest.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use alexnet_data::progress_bar;
use alexnet_data::shards::prepare::prepare;
use alexnet_data::{BadInputPolicy, DataFormat, PatchEncoding, PrepareOptions, skipped_lines};
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::ProgressBar;

#[derive(Args)]
pub struct PrepareArgs {
    /// The data set: an image folder (`SRC/<split>/<class>/<image>`), the ILSVRC-2012 layout, a
    /// folder of CIFAR binary files, or of IDX files.
    src: PathBuf,
    /// Where the shards, `stats.safetensors`, `skipped.tsv` and `dataset.json` go.
    out: PathBuf,
    /// Layout of SRC: image-folder, ilsvrc, cifar or idx (default: detected).
    #[arg(long)]
    format: Option<String>,
    /// Side of the stored patches (Section 2: 256); default 256 for photographs, the native size
    /// for CIFAR and IDX.
    #[arg(long)]
    side: Option<usize>,
    /// Store patches as JPEG of this quality (1-100) instead of raw pixels: about a tenth of the
    /// disk, decoded on every read. For sets larger than memory.
    #[arg(long, value_name = "QUALITY")]
    jpeg: Option<u8>,
    /// Images per shard.
    #[arg(long, default_value_t = 1024)]
    shard_size: usize,
    /// Only these splits (repeatable); default: all.
    #[arg(long = "split")]
    splits: Vec<String>,
    /// Stop at the first unusable file instead of skipping it and listing it in skipped.tsv.
    #[arg(long)]
    strict: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: PrepareArgs) -> Result<()> {
    let format = match &args.format {
        Some(name) => Some(name.parse::<DataFormat>()?),
        None => None,
    };
    let encoding = match args.jpeg {
        None => PatchEncoding::Raw,
        Some(q @ 1..=100) => PatchEncoding::Jpeg(q),
        Some(q) => bail!("--jpeg {q}: quality must be between 1 and 100"),
    };
    let options = PrepareOptions {
        side: args.side,
        encoding,
        shard_size: args.shard_size,
        policy: BadInputPolicy::strict_if(args.strict),
        format,
        splits: args.splits.clone(),
    };
    let bar = progress_bar(0, args.quiet, "prepare");
    // Without a terminal (a long job in the background) the bar is invisible: say how it goes
    // every 30 s instead.
    let log = (!args.quiet && !std::io::stderr().is_terminal()).then(|| log_progress(bar.clone()));
    let summary = prepare(&args.src, &args.out, &options, &bar).with_context(|| {
        format!(
            "preparing {} into {}",
            args.src.display(),
            args.out.display()
        )
    });
    if let Some((stop, thread)) = log {
        let _ = stop.send(());
        let _ = thread.join();
    }
    let summary = summary?;

    let total: usize = summary.splits.iter().map(|s| s.images).sum();
    println!(
        "{} ({}) -> {}: {} classes, {}x{} patches, {:.1} MB in {:.1} s ({:.0} images/s)",
        args.src.display(),
        summary.format.name(),
        args.out.display(),
        summary.class_names.len(),
        summary.side,
        summary.side,
        summary.bytes as f64 / 1e6,
        summary.seconds,
        total as f64 / summary.seconds.max(1e-9)
    );
    for split in &summary.splits {
        let (least, most) = (
            split.per_class.iter().min().copied().unwrap_or(0),
            split.per_class.iter().max().copied().unwrap_or(0),
        );
        println!(
            "  {:<8} {:>8} images ({least}..{most} per class), {} skipped, {} shards written, {} kept",
            split.name,
            split.images,
            split.skipped.len(),
            split.shards_written,
            split.shards_kept
        );
        // Every class's count when there are few (all of them are in dataset.json).
        if split.per_class.len() <= 20 {
            let counts: Vec<String> = summary
                .class_names
                .iter()
                .zip(&split.per_class)
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            println!("    {}", counts.join(", "));
        }
        for line in skipped_lines(&split.skipped, 10) {
            println!("    skipped {line}");
        }
    }
    let [r, g, b] = summary.stats.channel_mean();
    let [sr, sg, sb] = summary.stats.channel_std();
    println!(
        "  mean RGB {r:.1} {g:.1} {b:.1}, std {sr:.1} {sg:.1} {sb:.1}, PCA eigenvalues {:.1} {:.1} {:.1}",
        summary.stats.eigenvalues[0], summary.stats.eigenvalues[1], summary.stats.eigenvalues[2]
    );
    println!(
        "train on it with: alexnet train --data {} (data.format = \"shards\")",
        args.out.display()
    );
    Ok(())
}

/// Prints `bar`'s position, rate and ETA every 30 s on standard output until told to stop.
fn log_progress(bar: ProgressBar) -> (Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = channel::<()>();
    let thread = std::thread::spawn(move || {
        while stopped.recv_timeout(Duration::from_secs(30)).is_err() {
            let (done, total) = (bar.position(), bar.length().unwrap_or(0));
            if total == 0 {
                continue;
            }
            println!(
                "prepare: {done}/{total} images ({}), {:.0} images/s, ETA {} s",
                bar.message(),
                bar.per_sec(),
                bar.eta().as_secs()
            );
        }
    });
    (stop, thread)
}
