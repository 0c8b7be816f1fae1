//! `alexnet prepare SRC OUT`: a data set on disk, in any layout we read, becomes packed shards with
//! the statistics the paper's preprocessing needs.
//!
//! 1. Scan the source ([`crate::sources::scan_source`]): which splits, which
//!    classes, which files.
//! 2. For each split, cut the file list into shards of `shard_size` images. A shard whose file is
//!    already there with the same plan (a re-run after an interruption) is kept; any other is
//!    decoded (in parallel, on all cores) and written.
//! 3. Compute the mean image and the RGB PCA on the training split, from the shards.
//! 4. Write the bad-input report (`skipped.tsv`) and, last, the manifest (`dataset.json`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::atomic::write_atomic;
use crate::bad_input::{BadInputPolicy, SkippedFile, write_report};
use crate::error::DataError;
use crate::formats::DataFormat;
use crate::lock::DirLock;
use crate::shards::file::{PatchEncoding, Shard, ShardIndex, ShardWriter, plan_hash};
use crate::shards::set::{MANIFEST, MANIFEST_FORMAT, Manifest, ShardSet, SplitEntry};
use crate::sources::{Items, scan_source};
use crate::stats::DatasetStats;

#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Side of the stored patches; `None`: 256 for photographs (Section 2), the native size for
    /// CIFAR and IDX.
    pub side: Option<usize>,
    pub encoding: PatchEncoding,
    /// Images per shard.
    pub shard_size: usize,
    pub policy: BadInputPolicy,
    /// `None`: detect.
    pub format: Option<DataFormat>,
    /// Only these splits (all when empty).
    pub splits: Vec<String>,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            side: None,
            encoding: PatchEncoding::Raw,
            shard_size: 1024,
            policy: BadInputPolicy::Skip,
            format: None,
            splits: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SplitSummary {
    pub name: String,
    pub images: usize,
    pub per_class: Vec<usize>,
    pub skipped: Vec<SkippedFile>,
    pub shards_written: usize,
    pub shards_kept: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PrepareSummary {
    pub format: DataFormat,
    pub side: usize,
    pub class_names: Vec<String>,
    pub splits: Vec<SplitSummary>,
    /// Bytes of all shard files.
    pub bytes: u64,
    pub seconds: f64,
    pub stats: DatasetStats,
}

/// Images decoded in parallel at a time while a shard is written: enough to keep every core busy,
/// few enough that memory stays flat.
const DECODE_BATCH: usize = 256;

/// One shard to write: which images of the split (and the names they are kept under), where, and
/// under which plan.
struct ShardJob {
    range: std::ops::Range<usize>,
    names: Vec<String>,
    path: PathBuf,
    plan: String,
}

fn write_shard(
    items: &Items,
    job: ShardJob,
    side: usize,
    options: &PrepareOptions,
    progress: &ProgressBar,
) -> Result<ShardIndex, DataError> {
    let ShardJob {
        range,
        mut names,
        path,
        plan,
    } = job;
    let mut writer = ShardWriter::create(&path, side, options.encoding, plan)?;
    let first = range.start;
    let indices: Vec<usize> = range.collect();
    for batch in indices.chunks(DECODE_BATCH) {
        let patches: Vec<Result<Vec<u8>, DataError>> = batch
            .par_iter()
            .map(|&i| {
                let patch = items.patch(i, side);
                progress.inc(1);
                patch
            })
            .collect();
        for (&i, patch) in batch.iter().zip(patches) {
            let mut skipped = Vec::new();
            match options.policy.handle(patch, &mut skipped)? {
                Some(patch) => writer.push(
                    &patch,
                    items.label(i),
                    std::mem::take(&mut names[i - first]),
                )?,
                None => skipped.into_iter().for_each(|s| writer.skip(s)),
            }
        }
    }
    writer.finish()
}

/// Runs the whole preparation of `src` into `out`. Safe to re-run: finished shards made with the
/// same settings from the same files are kept.
pub fn prepare(
    src: &Path,
    out: &Path,
    options: &PrepareOptions,
    progress: &ProgressBar,
) -> Result<PrepareSummary, DataError> {
    let started = Instant::now();
    let mut source = scan_source(src, options.format)?;
    // OUT is created only once SRC is known to be a data set, and is ours alone until we end.
    let _lock = DirLock::acquire(out, "prepare")?;
    if !options.splits.is_empty() {
        for wanted in &options.splits {
            if !source.splits.iter().any(|s| &s.name == wanted) {
                return Err(DataError::NoSuchSplit {
                    path: src.to_path_buf(),
                    split: wanted.clone(),
                    available: source.splits.iter().map(|s| s.name.clone()).collect(),
                });
            }
        }
        source.splits.retain(|s| options.splits.contains(&s.name));
    }
    let side = options.side.or(source.native_side).unwrap_or(256);
    if side == 0 || side > 4096 {
        return Err(DataError::SideOutOfRange(side));
    }
    if options.shard_size == 0 {
        return Err(DataError::EmptyShards);
    }
    let encoding_tag = serde_json::to_string(&options.encoding).expect("serializes");
    // What every shard's plan starts with: a change to any of these makes every shard stale.
    let settings = format!(
        "{MANIFEST_FORMAT} side={side} encoding={encoding_tag} policy={:?}",
        options.policy
    );
    let classes = source.class_names.len();

    progress.set_length(source.splits.iter().map(|s| s.items.len() as u64).sum());
    let mut summaries = Vec::new();
    let mut entries = std::collections::BTreeMap::new();
    let mut report = Vec::new();
    let mut bytes = 0u64;
    for split in &source.splits {
        progress.set_message(split.name.clone());
        let mut skipped = split.problems.clone();
        if let (BadInputPolicy::Strict, Some(problem)) = (options.policy, skipped.first()) {
            return Err(DataError::Listing {
                path: problem.path.clone().into(),
                reason: problem.reason.clone(),
            });
        }
        let dir = out.join(&split.name);
        std::fs::create_dir_all(&dir).map_err(|e| DataError::Write {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let count = split.items.len().div_ceil(options.shard_size);
        let mut per_class = vec![0usize; classes];
        let mut shard_names = Vec::new();
        let (mut written, mut kept) = (0, 0);
        for k in 0..count {
            let range =
                k * options.shard_size..((k + 1) * options.shard_size).min(split.items.len());
            let names: Vec<String> = range
                .clone()
                .map(|i| split.items.name(i, &source.root))
                .collect();
            let labels: Vec<String> = range
                .clone()
                .map(|i| split.items.label(i).to_string())
                .collect();
            let plan = plan_hash(
                std::iter::once(settings.as_bytes()).chain(
                    names
                        .iter()
                        .zip(&labels)
                        .flat_map(|(n, l)| [n.as_bytes(), l.as_bytes()]),
                ),
            );
            let name = format!("shard-{k:05}.ash");
            let path = dir.join(&name);
            let index = match Shard::open(&path) {
                Ok(shard) if shard.index.plan == plan && shard.index.side == side => {
                    progress.inc(range.len() as u64);
                    kept += 1;
                    shard.index
                }
                _ => {
                    written += 1;
                    write_shard(
                        &split.items,
                        ShardJob {
                            range,
                            names,
                            path: path.clone(),
                            plan,
                        },
                        side,
                        options,
                        progress,
                    )?
                }
            };
            for record in &index.records {
                per_class[record.label as usize] += 1;
            }
            skipped.extend(index.skipped);
            bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            shard_names.push(format!("{}/{name}", split.name));
        }
        remove_stale_shards(&dir, count);
        let images: usize = per_class.iter().sum();
        report.extend(skipped.iter().map(|s| (split.name.clone(), s.clone())));
        entries.insert(
            split.name.clone(),
            SplitEntry {
                images,
                skipped: skipped.len(),
                per_class: per_class.clone(),
                shards: shard_names,
            },
        );
        summaries.push(SplitSummary {
            name: split.name.clone(),
            images,
            per_class,
            skipped,
            shards_written: written,
            shards_kept: kept,
        });
    }
    progress.finish_and_clear();

    let stats_split = summaries
        .iter()
        .find(|s| s.name == "train")
        .or(summaries.first())
        .map(|s| s.name.clone())
        .ok_or_else(|| DataError::NothingToPrepare(src.to_path_buf()))?;
    let stats_paths: Vec<PathBuf> = entries[&stats_split]
        .shards
        .iter()
        .map(|s| out.join(s))
        .collect();
    let stats_set = ShardSet::from_shards(out, &stats_paths, side, source.class_names.clone())?;
    if entries[&stats_split].images == 0 {
        return Err(DataError::NothingLeft(src.join(&stats_split)));
    }
    let stats = DatasetStats::compute(&stats_set)?;
    stats.write(out)?;
    write_report(&out.join("skipped.tsv"), &report)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        side,
        encoding: options.encoding,
        source: src.to_string_lossy().into_owned(),
        source_format: source.format.name().into(),
        class_names: source.class_names.clone(),
        class_descriptions: source.class_descriptions.clone(),
        splits: entries,
        stats_split,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("the manifest serializes");
    write_atomic(&out.join(MANIFEST), json.as_bytes())?;
    Ok(PrepareSummary {
        format: source.format,
        side,
        class_names: source.class_names,
        splits: summaries,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        stats,
    })
}

/// Removes shards numbered `count` and above, and temporary files, left by an earlier run with
/// other settings or an interrupted write.
fn remove_stale_shards(dir: &Path, count: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.ends_with(".tmp")
            || name
                .strip_prefix("shard-")
                .and_then(|rest| rest.strip_suffix(".ash"))
                .and_then(|k| k.parse::<usize>().ok())
                .is_some_and(|k| k >= count);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
