//! `alexnet prepare SRC OUT`: a data set on disk, in any layout we read, becomes packed shards with
//! the statistics the paper's preprocessing needs.
//!
//! 1. Scan the source ([`scan_source`]): which splits, which classes, which files.
//! 2. For each split, cut the file list into shards of `shard_size` images. A shard whose file is
//!    already there with the same plan (a re-run after an interruption) is kept; any other is
//!    decoded (in parallel, on all cores) and written.
//! 3. Compute the mean image and the RGB PCA on the training split, from the shards.
//! 4. Write the bad-input report (`skipped.tsv`) and, last, the manifest (`dataset.json`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::atomic::write_atomic;
use crate::bad_input::{BadInputPolicy, SkippedFile, write_report};
use crate::dataset::DecodedSet;
use crate::decode::{load_square_patch, rescale_patch};
use crate::error::DataError;
use crate::formats::{cifar, idx, ilsvrc};
use crate::image_folder::{ImageFolder, LabelledFile};
use crate::shards::file::{PatchEncoding, Shard, ShardIndex, ShardWriter, plan_hash};
use crate::shards::set::{MANIFEST, MANIFEST_FORMAT, Manifest, ShardSet, SplitEntry};
use crate::stats::DatasetStats;

/// The layouts `prepare` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// `SRC/<split>/<class>/<image>`, or `SRC/<class>/<image>` as the single split `train`.
    ImageFolder,
    /// ILSVRC-2012: `train/<wnid>/*.JPEG` and a flat `val/` labelled by the devkit or
    /// `LOC_val_solution.csv`.
    Ilsvrc,
    /// CIFAR-10 / CIFAR-100 binary files.
    Cifar,
    /// MNIST-style IDX files.
    Idx,
}

impl FromStr for SourceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "image-folder" => Ok(Self::ImageFolder),
            "ilsvrc" => Ok(Self::Ilsvrc),
            "cifar" => Ok(Self::Cifar),
            "idx" => Ok(Self::Idx),
            other => Err(format!(
                "unknown source format {other:?} (image-folder, ilsvrc, cifar, idx)"
            )),
        }
    }
}

impl SourceFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::ImageFolder => "image-folder",
            Self::Ilsvrc => "ilsvrc",
            Self::Cifar => "cifar",
            Self::Idx => "idx",
        }
    }

    /// Guesses the layout of `src` from the files it holds.
    pub fn detect(src: &Path) -> Self {
        let has = |name: &str| src.join(name).exists();
        if has("data_batch_1.bin") || has("train.bin") || has("test_batch.bin") {
            Self::Cifar
        } else if has("train-images-idx3-ubyte") || has("train-images-idx3-ubyte.gz") {
            Self::Idx
        } else if ilsvrc::has_flat_val(src) {
            Self::Ilsvrc
        } else {
            Self::ImageFolder
        }
    }
}

/// The images of one split: files to decode, or a binary set already in memory.
pub enum Items {
    Files(Vec<LabelledFile>),
    Decoded(DecodedSet),
}

impl Items {
    pub fn len(&self) -> usize {
        match self {
            Items::Files(files) => files.len(),
            Items::Decoded(set) => set.labels.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn label(&self, i: usize) -> usize {
        match self {
            Items::Files(files) => files[i].label,
            Items::Decoded(set) => set.labels[i],
        }
    }

    /// The name kept in the shard: the path below `root`, or `#i`.
    fn name(&self, i: usize, root: &Path) -> String {
        match self {
            Items::Files(files) => {
                let path = &files[i].path;
                path.strip_prefix(root)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned()
            }
            Items::Decoded(_) => format!("#{i}"),
        }
    }

    fn patch(&self, i: usize, side: usize) -> Result<Vec<u8>, DataError> {
        match self {
            Items::Files(files) => load_square_patch(&files[i].path, side),
            Items::Decoded(set) => Ok(rescale_patch(set.patch(i), set.side, side)),
        }
    }
}

pub struct SourceSplit {
    pub name: String,
    pub items: Items,
    /// Problems found while listing (empty class folders, unlabelled files), for the report.
    pub problems: Vec<SkippedFile>,
}

/// A scanned source: its classes and splits.
pub struct Source {
    pub root: PathBuf,
    pub format: SourceFormat,
    /// The side the source's images have when it has one (CIFAR 32, MNIST 28).
    pub native_side: Option<usize>,
    pub class_names: Vec<String>,
    pub class_descriptions: Vec<String>,
    pub splits: Vec<SourceSplit>,
}

/// Image-folder splits: every sub-folder of `src` that holds class folders; or `src` itself as the
/// split `train` when its sub-folders hold images. Classes are the sorted union over the splits,
/// so a label means the same class in every split.
fn scan_image_folder(src: &Path) -> Result<Source, DataError> {
    if !src.is_dir() {
        return Err(DataError::MissingDir(src.to_path_buf()));
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(src)
        .map_err(|e| DataError::Unreadable {
            path: src.to_path_buf(),
            reason: e.to_string(),
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    let holds_folders = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(Result::ok).any(|e| e.path().is_dir()))
            .unwrap_or(false)
    };
    let split_dirs: Vec<(String, PathBuf)> = if subdirs.iter().any(|d| holds_folders(d)) {
        subdirs
            .into_iter()
            .filter(|d| holds_folders(d))
            .map(|d| {
                (
                    d.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    d,
                )
            })
            .collect()
    } else {
        vec![("train".to_string(), src.to_path_buf())]
    };
    let folders: Vec<(String, ImageFolder)> = split_dirs
        .into_iter()
        .map(|(name, dir)| ImageFolder::scan(&dir).map(|f| (name, f)))
        .collect::<Result<_, _>>()?;
    let mut class_names: Vec<String> = folders
        .iter()
        .flat_map(|(_, f)| f.class_names.iter().cloned())
        .collect();
    class_names.sort();
    class_names.dedup();
    let splits = folders
        .into_iter()
        .map(|(name, folder)| {
            let global: Vec<usize> = folder
                .class_names
                .iter()
                .map(|c| class_names.binary_search(c).expect("in the union"))
                .collect();
            let problems = folder.empty_class_skips();
            let files = folder
                .files
                .into_iter()
                .map(|f| LabelledFile {
                    label: global[f.label],
                    path: f.path,
                })
                .collect();
            SourceSplit {
                name,
                items: Items::Files(files),
                problems,
            }
        })
        .collect();
    Ok(Source {
        root: src.to_path_buf(),
        format: SourceFormat::ImageFolder,
        native_side: None,
        class_descriptions: vec![String::new(); class_names.len()],
        class_names,
        splits,
    })
}

fn binary_source(src: &Path, format: SourceFormat) -> Result<Source, DataError> {
    let load = |training: bool| match format {
        SourceFormat::Cifar => cifar::load(src, training),
        _ => idx::load(src, training),
    };
    let train = load(true)?;
    let test = load(false)?;
    Ok(Source {
        root: src.to_path_buf(),
        format,
        native_side: Some(train.side),
        class_descriptions: vec![String::new(); train.class_names.len()],
        class_names: train.class_names.clone(),
        splits: vec![
            SourceSplit {
                name: "train".into(),
                items: Items::Decoded(train),
                problems: Vec::new(),
            },
            SourceSplit {
                name: "test".into(),
                items: Items::Decoded(test),
                problems: Vec::new(),
            },
        ],
    })
}

/// Lists `src` in `format` (detected when `None`).
pub fn scan_source(src: &Path, format: Option<SourceFormat>) -> Result<Source, DataError> {
    if !src.exists() {
        return Err(DataError::MissingDir(src.to_path_buf()));
    }
    match format.unwrap_or_else(|| SourceFormat::detect(src)) {
        SourceFormat::ImageFolder => scan_image_folder(src),
        SourceFormat::Ilsvrc => ilsvrc::scan(src),
        format => binary_source(src, format),
    }
}

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
    pub format: Option<SourceFormat>,
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
    pub format: SourceFormat,
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
    if !options.splits.is_empty() {
        for wanted in &options.splits {
            if !source.splits.iter().any(|s| &s.name == wanted) {
                return Err(DataError::BadLayout {
                    path: src.to_path_buf(),
                    reason: format!("no split {wanted:?}"),
                });
            }
        }
        source.splits.retain(|s| options.splits.contains(&s.name));
    }
    let side = options.side.or(source.native_side).unwrap_or(256);
    if side == 0 || side > 4096 {
        return Err(DataError::BadLayout {
            path: out.to_path_buf(),
            reason: format!("side {side} is outside 1..=4096"),
        });
    }
    if options.shard_size == 0 {
        return Err(DataError::BadLayout {
            path: out.to_path_buf(),
            reason: "shard size must be at least 1".into(),
        });
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
            return Err(DataError::BadLayout {
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
        .ok_or_else(|| DataError::BadLayout {
            path: src.to_path_buf(),
            reason: "no splits to prepare".into(),
        })?;
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
