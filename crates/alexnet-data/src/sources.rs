//! What `prepare` reads: a source data set, scanned into its classes and splits, each split a
//! list of files to decode or a binary set already decoded. The formats (`formats/`) say how
//! each layout is laid out; this file turns any of them into one [`Source`].

use std::path::{Path, PathBuf};

use crate::bad_input::SkippedFile;
use crate::dataset::DecodedSet;
use crate::decode::{load_square_patch, rescale_patch};
use crate::error::DataError;
use crate::formats::{DataFormat, cifar, idx, ilsvrc};
use crate::image_folder::{ImageFolder, LabelledFile, LabelledSplit};

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

    pub fn label(&self, i: usize) -> usize {
        match self {
            Items::Files(files) => files[i].label,
            Items::Decoded(set) => set.labels[i],
        }
    }

    /// The name kept in the shard: the path below `root`, or `#i`.
    pub fn name(&self, i: usize, root: &Path) -> String {
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

    pub fn patch(&self, i: usize, side: usize) -> Result<Vec<u8>, DataError> {
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

impl From<LabelledSplit> for SourceSplit {
    fn from(split: LabelledSplit) -> Self {
        Self {
            name: split.name,
            items: Items::Files(split.files),
            problems: split.problems,
        }
    }
}

/// A scanned source: its classes and splits.
pub struct Source {
    pub root: PathBuf,
    pub format: DataFormat,
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
        return Err(DataError::not_a_dir(src));
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
        format: DataFormat::ImageFolder,
        native_side: None,
        class_descriptions: vec![String::new(); class_names.len()],
        class_names,
        splits,
    })
}

fn binary_source(src: &Path, format: DataFormat) -> Result<Source, DataError> {
    let load = |training: bool| match format {
        DataFormat::Cifar => cifar::load(src, training),
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
pub fn scan_source(src: &Path, format: Option<DataFormat>) -> Result<Source, DataError> {
    if !src.exists() {
        return Err(DataError::not_a_dir(src));
    }
    match format.unwrap_or_else(|| DataFormat::detect(src)) {
        DataFormat::ImageFolder => scan_image_folder(src),
        DataFormat::Ilsvrc => {
            let layout = ilsvrc::scan(src)?;
            Ok(Source {
                root: src.to_path_buf(),
                format: DataFormat::Ilsvrc,
                native_side: None,
                class_names: layout.class_names,
                class_descriptions: layout.class_descriptions,
                splits: layout.splits.into_iter().map(SourceSplit::from).collect(),
            })
        }
        DataFormat::Shards => Err(DataError::AlreadyPrepared(src.to_path_buf())),
        format => binary_source(src, format),
    }
}
