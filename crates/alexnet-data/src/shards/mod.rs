//! Packed shards: a prepared data set read in place, as Caffe's LMDB or TFRecords are.
//!
//! - [`file`](mod@file): one shard file (patches then an index), written atomically, read by memory mapping.
//! - [`set`]: the manifest of a prepared data set and a split of it as a [`PatchSource`](crate::PatchSource).
//! - [`prepare`](mod@prepare): from a source layout to shards, statistics, report and manifest; resumable.

pub mod file;
pub mod prepare;
pub mod set;

pub use file::{PatchEncoding, Shard, ShardIndex, ShardWriter};
pub use prepare::{PrepareOptions, PrepareSummary, prepare};
pub use set::{Manifest, ShardSet};
