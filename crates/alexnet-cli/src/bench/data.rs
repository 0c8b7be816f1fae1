//! `alexnet bench data`: how fast images become training batches, from a JPEG folder (decode,
//! rescale, crop, flip, PCA noise, mean subtraction) and from prepared shards (the same minus the
//! decode), on one core and on all. `benchmarks/data_torchvision.py` does the same work with a
//! PyTorch DataLoader; `benchmarks/compare_data.py` runs both and prints the ratio.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use alexnet_data::augment::{pca_colour_shift, random_view, write_view};
use alexnet_data::decode::load_square_patch;
use alexnet_data::{
    BatchLoader, DatasetStats, ImageFolder, PatchSource, ShardSet, Shuffle, ViewPlan,
};
use anyhow::{Context, Result, bail};
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::median;

#[derive(Args)]
pub struct DataBenchArgs {
    /// An image folder split (`<class>/<image>`) to decode from.
    #[arg(long)]
    folder: Option<PathBuf>,
    /// A directory made by `alexnet prepare` to read from.
    #[arg(long)]
    shards: Option<PathBuf>,
    /// Split of --shards.
    #[arg(long, default_value = "train")]
    split: String,
    /// Images per timed pass from the folder (spread evenly over it).
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Images per timed pass from the shards.
    #[arg(long, default_value_t = 8192)]
    shard_images: usize,
    /// Thread counts to measure, comma-separated (default: 1 and all cores).
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Stored patch side (Section 2).
    #[arg(long, default_value_t = 256)]
    side: usize,
    /// Crop fed to the network (Section 4.1).
    #[arg(long, default_value_t = 224)]
    crop: usize,
    /// Images per batch from the shards.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Timed passes per row; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also time whole epochs of the training loader over --shards, each from a cold page cache
    /// (dropped first, which needs root), once per order given: `global`, `shards` (data.shuffle).
    #[arg(long, value_delimiter = ',')]
    epoch_shuffle: Vec<String>,
    /// Shards mixed at once by the `shards` order (data.shuffle_window).
    #[arg(long, default_value_t = 16)]
    shuffle_window: usize,
    /// Also write the rows as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Row {
    source: &'static str,
    threads: usize,
    images: usize,
    /// Median over the passes.
    seconds: f64,
    images_per_second: f64,
    images_per_second_per_core: f64,
}

/// Times `pass` `repeat` times on a pool of `threads` threads, after one untimed warm-up pass.
fn timed(threads: usize, repeat: usize, pass: &(dyn Fn() -> Result<()> + Sync)) -> Result<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building the thread pool")?;
    pool.install(pass)?;
    let mut seconds = Vec::new();
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        pool.install(pass)?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(median(seconds))
}

fn row(source: &'static str, threads: usize, images: usize, seconds: f64) -> Row {
    let rate = images as f64 / seconds;
    Row {
        source,
        threads,
        images,
        seconds,
        images_per_second: rate,
        images_per_second_per_core: rate / threads as f64,
    }
}

/// Statistics for the folder pass: a mean image and a PCA of the right shape (their values do not
/// change the work done).
fn placeholder_stats(side: usize) -> DatasetStats {
    DatasetStats {
        side,
        mean_image: vec![120.0; 3 * side * side],
        eigenvalues: [4000.0, 300.0, 50.0],
        eigenvectors: [[0.58, 0.58, 0.58], [-0.7, 0.0, 0.7], [0.4, -0.8, 0.4]],
        input_scale: [1.0; 3],
    }
}

/// Empties the kernel's page cache, so the next reads come from the disk; says so when it cannot
/// (not root), since the epoch figures are then warm.
fn drop_page_cache() {
    let synced = std::process::Command::new("sync")
        .status()
        .is_ok_and(|s| s.success());
    if !synced || std::fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
        eprintln!(
            "note: could not drop the page cache (needs root): this epoch may read from memory"
        );
    }
}

pub fn bench_data(args: DataBenchArgs) -> Result<()> {
    if args.folder.is_none() && args.shards.is_none() {
        bail!(
            "give --folder DIR (an image folder split) and/or --shards DIR (from alexnet prepare)"
        );
    }
    if args.crop > args.side {
        bail!("--crop {} is larger than --side {}", args.crop, args.side);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = args.threads.clone();
    if threads.is_empty() {
        threads = vec![1, cores];
        threads.dedup();
    }
    let mut rows = Vec::new();

    if let Some(folder) = &args.folder {
        let scanned = ImageFolder::scan(folder)?;
        if scanned.files.is_empty() {
            bail!("{}: no images", folder.display());
        }
        let step = (scanned.files.len() / args.images.max(1)).max(1);
        let files: Vec<PathBuf> = scanned
            .files
            .iter()
            .step_by(step)
            .take(args.images)
            .map(|f| f.path.clone())
            .collect();
        let stats = placeholder_stats(args.side);
        let view_size = 3 * args.crop * args.crop;
        // One image: decode, shorter side to `side`, centre square, random crop, flip, PCA noise,
        // mean subtraction, into a float buffer (what torchvision's pipeline produces per image).
        let pass = || -> Result<()> {
            files.par_iter().enumerate().try_for_each_init(
                || vec![0.0f32; view_size],
                |out, (i, path)| {
                    let patch = load_square_patch(path, args.side)?;
                    let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
                    let view = random_view(&mut rng, args.side, args.crop, true);
                    let shift = pca_colour_shift(&mut rng, &stats, 0.1);
                    write_view(&patch, &stats, args.crop, view, shift, out);
                    Ok(())
                },
            )
        };
        for &t in &threads {
            let seconds = timed(t, args.repeat, &pass)?;
            rows.push(row("folder", t, files.len(), seconds));
        }
    }

    if let Some(dir) = &args.shards {
        let set = Arc::new(ShardSet::open(dir, &args.split)?);
        let stats = Arc::new(DatasetStats::read(dir)?);
        if set.side != args.side {
            eprintln!(
                "note: shards hold {0}x{0} patches; measuring at that side",
                set.side
            );
        }
        let crop = args.crop.min(set.side);
        let loader = BatchLoader::new(
            set.clone() as Arc<dyn PatchSource>,
            stats,
            crop,
            args.batch_size,
            ViewPlan::Train {
                flip: true,
                pca_sigma: 0.1,
            },
            0,
        )?;
        let order: Vec<usize> = (0..args.shard_images).map(|i| i % set.len()).collect();
        let batches = order.len().div_ceil(args.batch_size);
        let pass = || -> Result<()> {
            for b in 0..batches {
                std::hint::black_box(loader.build(0, &order, b)?);
            }
            Ok(())
        };
        for &t in &threads {
            let seconds = timed(t, args.repeat, &pass)?;
            rows.push(row("shards", t, order.len(), seconds));
        }
        for name in &args.epoch_shuffle {
            let (source, shuffle) = match name.as_str() {
                "global" => ("epoch-global", Shuffle::Global),
                "shards" => ("epoch-shards", Shuffle::Shards),
                other => bail!("--epoch-shuffle {other}: expected global or shards"),
            };
            let mut loader = loader.clone();
            (loader.shuffle, loader.shuffle_window) = (shuffle, args.shuffle_window);
            drop_page_cache();
            let started = Instant::now();
            for batch in loader.epoch(0, 0) {
                std::hint::black_box(batch?);
            }
            rows.push(row(
                source,
                cores,
                set.len(),
                started.elapsed().as_secs_f64(),
            ));
        }
    }

    println!(
        "{:<8} {:>7} {:>7} {:>9} {:>10} {:>14}",
        "source", "threads", "images", "seconds", "img/s", "img/s/core"
    );
    for r in &rows {
        println!(
            "{:<8} {:>7} {:>7} {:>9.3} {:>10.1} {:>14.1}",
            r.source,
            r.threads,
            r.images,
            r.seconds,
            r.images_per_second,
            r.images_per_second_per_core
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
