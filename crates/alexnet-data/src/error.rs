//! Errors of the data side; each names the file or folder and the reason.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("dataset directory {0} does not exist")]
    MissingDir(PathBuf),
    #[error("{0} is a file, not a directory")]
    NotADirectory(PathBuf),
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("dataset directory {0} has no class folders (expected <dir>/<class>/<image>)")]
    NoClasses(PathBuf),
    #[error("class folder {0} has no images (.jpg, .jpeg, .png, .bmp, .webp)")]
    EmptyClass(PathBuf),
    #[error("{path}: cannot decode image: {reason}")]
    Undecodable { path: PathBuf, reason: String },
    #[error("{path}: class folders {found:?} differ from the training set's {expected:?}")]
    ClassMismatch {
        path: PathBuf,
        found: Vec<String>,
        expected: Vec<String>,
    },
    #[error("crop of {crop} does not fit in images of side {side}")]
    CropTooLarge { crop: usize, side: usize },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: not a valid shard: {reason}")]
    BadShard { path: PathBuf, reason: String },
    #[error("{path}: not a safetensors file of f32 tensors: {reason}")]
    NotTensors { path: PathBuf, reason: String },
    #[error("{path}: not the statistics of a data set: {reason}")]
    BadStatistics { path: PathBuf, reason: String },
    #[error("{0}: it is already prepared (it holds dataset.json)")]
    AlreadyPrepared(PathBuf),
    #[error(
        "{dir}: the shards hold {stored}x{stored} patches but {wanted}x{wanted} were asked for \
         (data.resize); prepare again with --side {wanted}"
    )]
    SideMismatch {
        dir: PathBuf,
        stored: usize,
        wanted: usize,
    },
    #[error("{path}: line {line}: expected {expected}")]
    BadLine {
        path: PathBuf,
        line: usize,
        expected: &'static str,
    },
    #[error("{path}: line {line}: ILSVRC2012_ID {id} is not in {meta}")]
    UnknownSynsetId {
        path: PathBuf,
        line: usize,
        id: u32,
        meta: PathBuf,
    },
    #[error(
        "{0}: flat validation folder without labels: put LOC_val_solution.csv, or the devkit's \
         ILSVRC2012_validation_ground_truth.txt and meta.mat, in the data set folder"
    )]
    NoValidationLabels(PathBuf),
    #[error("{path}: not the devkit's meta.mat: {reason}")]
    BadMetaMat { path: PathBuf, reason: String },
    #[error("{path}: no split {split:?} (it has {available:?})")]
    NoSuchSplit {
        path: PathBuf,
        split: String,
        available: Vec<String>,
    },
    #[error("--side {0} is outside 1..=4096")]
    SideOutOfRange(usize),
    #[error("the shard size must be at least 1")]
    EmptyShards,
    #[error("{0}: no splits to prepare")]
    NothingToPrepare(PathBuf),
    #[error("{path}: {reason}")]
    Listing { path: PathBuf, reason: String },
    #[error(
        "{dir}: no readable dataset.json ({reason}): not prepared shards, or `alexnet prepare` \
         did not finish (run it again and it completes the job)"
    )]
    NotPrepared { dir: PathBuf, reason: String },
    #[error("{path}: not a shard manifest: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("{dir}: split {split:?} should hold {expected} images, its shards hold {found}")]
    SplitSize {
        dir: PathBuf,
        split: String,
        expected: usize,
        found: usize,
    },
    #[error("every image of {0} was skipped as bad input: nothing left to use")]
    NothingLeft(PathBuf),
    #[error("unknown data format {0:?} (image-folder, ilsvrc, cifar, idx, shards)")]
    UnknownFormat(String),
    #[error(
        "{dir}: in use by process {pid} (alexnet {command}), which holds its lock; wait for it to \
         end or stop it"
    )]
    Locked {
        dir: PathBuf,
        pid: String,
        command: String,
    },
    #[error("{0}: an ILSVRC-2012 layout is read by `alexnet prepare`; train on what it prepares")]
    PrepareFirst(PathBuf),
}

impl DataError {
    /// `dir` is not a directory: it is missing, or it (or a folder on its way) is a file, which
    /// the error then names.
    pub fn not_a_dir(dir: &std::path::Path) -> Self {
        match dir.ancestors().find(|a| a.exists()) {
            Some(existing) if !existing.is_dir() => {
                DataError::NotADirectory(existing.to_path_buf())
            }
            _ => DataError::MissingDir(dir.to_path_buf()),
        }
    }
}
