//! Where a loader takes its square patches from: decoded into memory ([`DecodedSet`](crate::DecodedSet))
//! or read from prepared shards ([`ShardSet`](crate::ShardSet)). Both look the same to the loader,
//! the statistics and the evaluation.

use std::borrow::Cow;
use std::path::Path;

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

    /// Checks that this split (read from `origin`) has exactly the classes `expected`, in order:
    /// a validation split against its training split, or a split against a checkpoint.
    fn expect_classes(&self, expected: &[String], origin: &Path) -> Result<(), DataError> {
        if self.class_names() != expected {
            return Err(DataError::ClassMismatch {
                path: origin.to_path_buf(),
                found: self.class_names().to_vec(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }
}
