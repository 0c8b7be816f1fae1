//! A prepared data set: `dataset.json` (the manifest) naming the shards of each split, with the
//! training statistics beside them. The manifest is written last by `prepare`, so its presence
//! means every shard it names is finished.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bad_input::SkippedFile;
use crate::error::DataError;
use crate::patch_source::PatchSource;
use crate::shards::file::{PatchEncoding, Shard};

pub const MANIFEST: &str = "dataset.json";
pub const MANIFEST_FORMAT: &str = "alexnet-shards-1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitEntry {
    pub images: usize,
    pub skipped: usize,
    /// Images per class, by label.
    pub per_class: Vec<usize>,
    /// Shard files, relative to the data set directory, in order.
    pub shards: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub side: usize,
    pub encoding: PatchEncoding,
    /// Where the images came from, and in which layout.
    pub source: String,
    pub source_format: String,
    pub class_names: Vec<String>,
    /// Human-readable names (ILSVRC's synset words), empty where unknown.
    pub class_descriptions: Vec<String>,
    pub splits: BTreeMap<String, SplitEntry>,
    /// The split the mean image and PCA (`stats.safetensors`) were computed on.
    pub stats_split: String,
}

impl Manifest {
    /// Whether `dir` holds a finished `alexnet prepare` (its manifest is written last).
    pub fn is_prepared(dir: &Path) -> bool {
        dir.join(MANIFEST).is_file()
    }

    pub fn read(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(MANIFEST);
        if !dir.is_dir() {
            return Err(DataError::not_a_dir(dir));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::NotPrepared {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| DataError::BadManifest {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(DataError::BadManifest {
                path,
                reason: format!("format {:?}, expected {MANIFEST_FORMAT:?}", manifest.format),
            });
        }
        Ok(manifest)
    }
}

/// One split of a prepared data set, every shard mapped into memory.
pub struct ShardSet {
    pub dir: PathBuf,
    pub side: usize,
    pub class_names: Vec<String>,
    shards: Vec<Shard>,
    /// (shard, record) of each image, in stored order.
    locations: Vec<(u32, u32)>,
    labels: Vec<usize>,
    skipped: Vec<SkippedFile>,
}

impl ShardSet {
    /// Split `split` of the prepared data set in `dir`.
    pub fn open(dir: &Path, split: &str) -> Result<Self, DataError> {
        let manifest = Manifest::read(dir)?;
        let entry = manifest
            .splits
            .get(split)
            .ok_or_else(|| DataError::NoSuchSplit {
                path: dir.to_path_buf(),
                split: split.to_string(),
                available: manifest.splits.keys().cloned().collect(),
            })?;
        let paths: Vec<PathBuf> = entry.shards.iter().map(|s| dir.join(s)).collect();
        let set = Self::from_shards(dir, &paths, manifest.side, manifest.class_names)?;
        if set.len() != entry.images {
            return Err(DataError::SplitSize {
                dir: dir.to_path_buf(),
                split: split.to_string(),
                expected: entry.images,
                found: set.len(),
            });
        }
        Ok(set)
    }

    /// The shards `paths` as one set (what `prepare` reads back to compute statistics).
    pub fn from_shards(
        dir: &Path,
        paths: &[PathBuf],
        side: usize,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let mut shards = Vec::new();
        let mut locations = Vec::new();
        let mut labels = Vec::new();
        let mut skipped = Vec::new();
        for (s, path) in paths.iter().enumerate() {
            let shard = Shard::open(path)?;
            if shard.index.side != side {
                return Err(DataError::BadShard {
                    path: path.clone(),
                    reason: format!("side {} where the data set's is {side}", shard.index.side),
                });
            }
            for (r, record) in shard.index.records.iter().enumerate() {
                if record.label as usize >= class_names.len() {
                    return Err(DataError::BadShard {
                        path: path.clone(),
                        reason: format!(
                            "{}: label {} of {} classes",
                            record.name,
                            record.label,
                            class_names.len()
                        ),
                    });
                }
                locations.push((s as u32, r as u32));
                labels.push(record.label as usize);
            }
            skipped.extend(shard.index.skipped.iter().cloned());
            shards.push(shard);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            side,
            class_names,
            shards,
            locations,
            labels,
            skipped,
        })
    }

    /// The source file name of image `index`.
    pub fn name(&self, index: usize) -> &str {
        let (s, r) = self.locations[index];
        &self.shards[s as usize].index.records[r as usize].name
    }
}

impl PatchSource for ShardSet {
    fn side(&self) -> usize {
        self.side
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn label(&self, index: usize) -> usize {
        self.labels[index]
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn patch(&self, index: usize) -> Result<Cow<'_, [u8]>, DataError> {
        let (s, r) = self.locations[index];
        self.shards[s as usize].patch(r as usize)
    }
    fn skipped(&self) -> &[SkippedFile] {
        &self.skipped
    }
    fn name(&self, index: usize) -> String {
        ShardSet::name(self, index).to_string()
    }
    fn blocks(&self) -> Vec<Range<usize>> {
        // Images are numbered shard after shard, so each shard is one run of indices.
        let mut blocks: Vec<Range<usize>> = Vec::with_capacity(self.shards.len());
        for (index, &(shard, _)) in self.locations.iter().enumerate() {
            match blocks.get_mut(shard as usize) {
                Some(block) => block.end = index + 1,
                None => blocks.push(index..index + 1),
            }
        }
        blocks
    }
    fn read_ahead(&self, indices: &[usize]) {
        let shard_of = |i: &usize| self.locations[*i].0;
        for same_shard in indices.chunk_by(|a, b| shard_of(a) == shard_of(b)) {
            let records: Vec<usize> = same_shard
                .iter()
                .map(|&i| self.locations[i].1 as usize)
                .collect();
            self.shards[shard_of(&same_shard[0]) as usize].read_ahead(&records);
        }
    }
}
