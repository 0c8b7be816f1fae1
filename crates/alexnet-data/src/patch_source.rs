//! Where a loader takes its square patches from: decoded into memory ([`DecodedSet`](crate::DecodedSet))
//! or read from prepared shards ([`ShardSet`](crate::ShardSet)). Both look the same to the loader,
//! the statistics and the evaluation.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::bad_input::SkippedFile;
use crate::error::DataError;

pub trait PatchSource: Send + Sync {
    /// Side of every patch.
    fn side(&self) -> usize;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn label(&self, index: usize) -> usize;
    /// Label `i` is `class_names()[i]`.
    fn class_names(&self) -> &[String];
    /// The `[side, side, 3]` RGB bytes of image `index`: borrowed when stored raw, decoded otherwise.
    fn patch(&self, index: usize) -> Result<Cow<'_, [u8]>, DataError>;
    /// Files left out of this split as bad input.
    fn skipped(&self) -> &[SkippedFile];
    /// What image `index` is called where it came from (its file, or its record's source name).
    fn name(&self, index: usize) -> String {
        format!("#{index}")
    }
    /// Runs of images stored together, in index order, covering every image once (a shard each);
    /// one run for a set in memory.
    fn blocks(&self) -> Vec<Range<usize>> {
        std::iter::once(0..self.len()).collect()
    }
    /// Asks the storage to start reading images `indices` (sorted) into memory, in file order,
    /// while others are in use: the shard shuffle's read-ahead. Nothing for a set in memory.
    fn read_ahead(&self, _indices: &[usize]) {}
}

/// `set` (read from `origin`) with the labels of the class list `expected` (its training split's,
/// or its checkpoint's). A split may lack classes (a validation folder without a class that has no
/// validation images): its labels are then renumbered to `expected`'s, so each class keeps its
/// index. A class that `expected` does not have is an error listing both.
pub fn with_classes_of(
    set: Arc<dyn PatchSource>,
    expected: &[String],
    origin: &Path,
) -> Result<Arc<dyn PatchSource>, DataError> {
    if set.class_names() == expected {
        return Ok(set);
    }
    let mismatch = || DataError::ClassMismatch {
        path: origin.to_path_buf(),
        found: set.class_names().to_vec(),
        expected: expected.to_vec(),
    };
    let labels: Vec<usize> = set
        .class_names()
        .iter()
        .map(|name| expected.iter().position(|e| e == name))
        .collect::<Option<_>>()
        .ok_or_else(mismatch)?;
    Ok(Arc::new(Relabelled {
        set,
        labels,
        class_names: expected.to_vec(),
    }))
}

/// A split whose label `i` is `labels[i]` of a longer class list.
struct Relabelled {
    set: Arc<dyn PatchSource>,
    labels: Vec<usize>,
    class_names: Vec<String>,
}

impl PatchSource for Relabelled {
    fn side(&self) -> usize {
        self.set.side()
    }
    fn len(&self) -> usize {
        self.set.len()
    }
    fn label(&self, index: usize) -> usize {
        self.labels[self.set.label(index)]
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn patch(&self, index: usize) -> Result<Cow<'_, [u8]>, DataError> {
        self.set.patch(index)
    }
    fn skipped(&self) -> &[SkippedFile] {
        self.set.skipped()
    }
    fn name(&self, index: usize) -> String {
        self.set.name(index)
    }
    fn blocks(&self) -> Vec<Range<usize>> {
        self.set.blocks()
    }
    fn read_ahead(&self, indices: &[usize]) {
        self.set.read_ahead(indices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecodedSet;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_split_lacking_a_class_keeps_every_class_index_and_an_extra_class_is_refused() {
        // val/ has cat (label 0) and ship (label 1); training has cat, dog, ship.
        let val = DecodedSet::from_patches(1, vec![0; 9], vec![0, 1, 1], names(&["cat", "ship"]));
        let training = names(&["cat", "dog", "ship"]);
        let set = with_classes_of(Arc::new(val), &training, Path::new("val")).unwrap();
        assert_eq!(set.class_names(), training.as_slice());
        assert_eq!((0..3).map(|i| set.label(i)).collect::<Vec<_>>(), [0, 2, 2]);
        assert_eq!(set.len(), 3);

        let frog = DecodedSet::from_patches(1, vec![0; 3], vec![0], names(&["frog"]));
        let err = with_classes_of(Arc::new(frog), &training, Path::new("val"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("[\"frog\"]") && err.contains("[\"cat\", \"dog\", \"ship\"]"),
            "{err}"
        );
    }
}
