//! One shard file: the patches of up to a few thousand images, back to back, then an index.
//!
//! ```text
//! [patch 0][patch 1]...[patch n-1][index: JSON][index length: u64 LE][magic "ALXSHRD1"]
//! ```
//!
//! The index (a [`ShardIndex`]) holds each patch's offset, length, label and source file name, the
//! files of this shard's share that were skipped, and the *plan* (a hash of the settings and of the
//! source files the shard was made from), by which a re-run of `prepare` knows a finished shard it
//! can keep. A shard is written to `<name>.tmp`, synced and renamed, so a file with the final name
//! is always whole; a torn one lacks the magic at its end and is rejected.
//!
//! Reading maps the file into memory: a raw patch is a slice of the mapping, no copy, no syscall.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::atomic::temporary_name;
use crate::bad_input::SkippedFile;
use crate::error::DataError;

const MAGIC: &[u8; 8] = b"ALXSHRD1";

/// How patches are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchEncoding {
    /// `side * side * 3` bytes each: read in place, nothing to decode.
    Raw,
    /// Re-encoded as baseline JPEG at this quality (1-100): about a tenth of the size, decoded on
    /// every read (for sets that do not fit in memory).
    Jpeg(u8),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub offset: u64,
    pub length: u64,
    pub label: u32,
    /// The source file (or `#index` for a binary data set).
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardIndex {
    pub side: usize,
    pub encoding: PatchEncoding,
    /// Hash of what the shard was made from; see [`plan_hash`].
    pub plan: String,
    pub records: Vec<ShardRecord>,
    pub skipped: Vec<SkippedFile>,
}

/// FNV-1a over the parts, as 16 hex digits: stable across Rust versions and platforms (std's
/// hasher is not), which is all a re-run needs to recognise its own shards.
pub fn plan_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in part.iter().chain(&[0xff]) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Writes one shard; [`ShardWriter::finish`] makes it visible under its final name.
pub struct ShardWriter {
    path: PathBuf,
    temporary: PathBuf,
    file: BufWriter<File>,
    offset: u64,
    index: ShardIndex,
}

impl ShardWriter {
    pub fn create(
        path: &Path,
        side: usize,
        encoding: PatchEncoding,
        plan: String,
    ) -> Result<Self, DataError> {
        let temporary = temporary_name(path);
        let file = File::create(&temporary).map_err(|e| DataError::Write {
            path: temporary.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            temporary,
            file: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            index: ShardIndex {
                side,
                encoding,
                plan,
                records: Vec::new(),
                skipped: Vec::new(),
            },
        })
    }

    fn write_error(&self, e: std::io::Error) -> DataError {
        DataError::Write {
            path: self.temporary.clone(),
            reason: e.to_string(),
        }
    }

    /// Appends one `[side, side, 3]` patch.
    pub fn push(&mut self, patch: &[u8], label: usize, name: String) -> Result<(), DataError> {
        let side = self.index.side;
        assert_eq!(patch.len(), side * side * 3, "a whole patch");
        let encoded: Cow<[u8]> = match self.index.encoding {
            PatchEncoding::Raw => Cow::Borrowed(patch),
            PatchEncoding::Jpeg(quality) => {
                let mut bytes = Vec::new();
                jpeg_encoder::Encoder::new(&mut bytes, quality)
                    .encode(
                        patch,
                        side as u16,
                        side as u16,
                        jpeg_encoder::ColorType::Rgb,
                    )
                    .map_err(|e| DataError::Write {
                        path: self.temporary.clone(),
                        reason: format!("JPEG encoding of {name}: {e}"),
                    })?;
                Cow::Owned(bytes)
            }
        };
        self.file
            .write_all(&encoded)
            .map_err(|e| self.write_error(e))?;
        self.index.records.push(ShardRecord {
            offset: self.offset,
            length: encoded.len() as u64,
            label: label as u32,
            name,
        });
        self.offset += encoded.len() as u64;
        Ok(())
    }

    pub fn skip(&mut self, skipped: SkippedFile) {
        self.index.skipped.push(skipped);
    }

    /// Writes the index and the magic, syncs, and renames the file to its final name.
    pub fn finish(mut self) -> Result<ShardIndex, DataError> {
        let json = serde_json::to_vec(&self.index).expect("the index serializes");
        let tail = [&json[..], &(json.len() as u64).to_le_bytes(), MAGIC].concat();
        self.file
            .write_all(&tail)
            .map_err(|e| self.write_error(e))?;
        let file = self.file.into_inner().map_err(|e| DataError::Write {
            path: self.temporary.clone(),
            reason: e.error().to_string(),
        })?;
        file.sync_all().map_err(|e| DataError::Write {
            path: self.temporary.clone(),
            reason: e.to_string(),
        })?;
        std::fs::rename(&self.temporary, &self.path).map_err(|e| DataError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(self.index)
    }
}

/// A finished shard, mapped into memory.
pub struct Shard {
    pub path: PathBuf,
    pub index: ShardIndex,
    map: Mmap,
}

impl Shard {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::BadShard {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| DataError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        // SAFETY: shards are written once and only ever replaced by rename, never changed in
        // place, so the mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| bad(format!("cannot map: {e}")))?;
        let size = map.len();
        if size < 16 || &map[size - 8..] != MAGIC {
            return Err(bad(
                "no shard end marker (an unfinished or foreign file)".into()
            ));
        }
        let index_length =
            u64::from_le_bytes(map[size - 16..size - 8].try_into().expect("8 bytes")) as usize;
        let index_start = (size - 16)
            .checked_sub(index_length)
            .ok_or_else(|| bad("index length beyond the file".into()))?;
        let index: ShardIndex = serde_json::from_slice(&map[index_start..size - 16])
            .map_err(|e| bad(format!("unreadable index: {e}")))?;
        let patch_bytes = (index.side * index.side * 3) as u64;
        for record in &index.records {
            let end = record.offset.checked_add(record.length);
            if end.is_none_or(|end| end > index_start as u64)
                || (index.encoding == PatchEncoding::Raw && record.length != patch_bytes)
            {
                return Err(bad(format!("record {} out of bounds", record.name)));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            index,
            map,
        })
    }

    pub fn len(&self) -> usize {
        self.index.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.records.is_empty()
    }

    /// The `[side, side, 3]` RGB bytes of record `i`.
    pub fn patch(&self, i: usize) -> Result<Cow<'_, [u8]>, DataError> {
        let record = &self.index.records[i];
        let bytes = &self.map[record.offset as usize..(record.offset + record.length) as usize];
        match self.index.encoding {
            PatchEncoding::Raw => Ok(Cow::Borrowed(bytes)),
            PatchEncoding::Jpeg(_) => {
                let side = self.index.side;
                let bad = |reason: String| DataError::BadShard {
                    path: self.path.clone(),
                    reason: format!("record {}: {reason}", record.name),
                };
                let rgb = crate::decode::decode_rgb(bytes).map_err(bad)?;
                if rgb.dimensions() != (side as u32, side as u32) {
                    return Err(bad(format!(
                        "decodes to {:?}, not {side}x{side}",
                        rgb.dimensions()
                    )));
                }
                Ok(Cow::Owned(rgb.into_raw()))
            }
        }
    }

    /// Asks the kernel to read records `records` (sorted) into the page cache now, each run of
    /// neighbouring records as one sequential read (`madvise(MADV_WILLNEED)`). Only advice: a
    /// refusal changes nothing but speed, so it is not an error.
    pub fn read_ahead(&self, records: &[usize]) {
        for (start, end) in self.byte_runs(records) {
            let _ = self.map.advise_range(
                memmap2::Advice::WillNeed,
                start as usize,
                (end - start) as usize,
            );
        }
    }

    /// The byte ranges of records `records` (sorted), neighbouring records joined into one.
    fn byte_runs(&self, records: &[usize]) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for record in records.iter().map(|&r| &self.index.records[r]) {
            match runs.last_mut() {
                Some((_, end)) if *end == record.offset => *end += record.length,
                _ => runs.push((record.offset, record.offset + record.length)),
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("alexnet-shardfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn patches(side: usize, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|k| {
                (0..side * side * 3)
                    .map(|i| ((i * 31 + k * 17) % 256) as u8)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn read_ahead_asks_for_each_run_of_neighbouring_records_once() {
        let path = temp("runs.ash");
        let mut writer = ShardWriter::create(&path, 4, PatchEncoding::Raw, "p".into()).unwrap();
        for (k, patch) in patches(4, 6).iter().enumerate() {
            writer.push(patch, 0, format!("img{k}.jpg")).unwrap();
        }
        writer.finish().unwrap();
        let shard = Shard::open(&path).unwrap();
        let size = 4 * 4 * 3; // raw patches, back to back from offset 0
        // Records 0, 1, 2 are one run, 4 and 5 another; 3 is not asked for.
        assert_eq!(
            shard.byte_runs(&[0, 1, 2, 4, 5]),
            vec![(0, 3 * size), (4 * size, 6 * size)]
        );
        assert_eq!(shard.byte_runs(&[3]), vec![(3 * size, 4 * size)]);
        assert!(shard.byte_runs(&[]).is_empty());
        shard.read_ahead(&[0, 1, 2, 4, 5]); // advice only: nothing to see but that it is taken
    }

    #[test]
    fn raw_shards_read_back_exactly_and_torn_ones_are_rejected() {
        let path = temp("raw.ash");
        let mut writer = ShardWriter::create(&path, 4, PatchEncoding::Raw, "p".into()).unwrap();
        for (k, patch) in patches(4, 3).iter().enumerate() {
            writer.push(patch, k * 2, format!("img{k}.jpg")).unwrap();
        }
        writer.skip(SkippedFile::new(
            Path::new("bad.jpg"),
            "empty file (0 bytes)",
        ));
        assert!(!path.exists(), "invisible until finished");
        writer.finish().unwrap();
        let shard = Shard::open(&path).unwrap();
        assert_eq!(shard.len(), 3);
        for (k, patch) in patches(4, 3).iter().enumerate() {
            assert_eq!(&*shard.patch(k).unwrap(), &patch[..]);
            assert_eq!(shard.index.records[k].label, (k * 2) as u32);
        }
        assert_eq!(shard.index.skipped[0].path, "bad.jpg");

        // Cut off the end: the shard is no longer taken as complete.
        let bytes = std::fs::read(&path).unwrap();
        let torn = temp("torn.ash");
        std::fs::write(&torn, &bytes[..bytes.len() - 3]).unwrap();
        let err = Shard::open(&torn).err().unwrap().to_string();
        assert!(
            err.contains("torn.ash") && err.contains("end marker"),
            "{err}"
        );
    }

    #[test]
    fn jpeg_shards_are_smaller_and_close() {
        let side = 32;
        // A smooth image (JPEG's good case) so the error bound can be tight.
        let patch: Vec<u8> = (0..side * side * 3)
            .map(|i| ((i / 3 % side) * 4 + (i / 3 / side) * 2 + (i % 3) * 20) as u8)
            .collect();
        let path = temp("jpeg.ash");
        let mut writer =
            ShardWriter::create(&path, side, PatchEncoding::Jpeg(95), "p".into()).unwrap();
        writer.push(&patch, 0, "a".into()).unwrap();
        writer.finish().unwrap();
        let shard = Shard::open(&path).unwrap();
        assert!(shard.index.records[0].length < (side * side * 3) as u64 / 2);
        let back = shard.patch(0).unwrap();
        let mean_error: f64 = back
            .iter()
            .zip(&patch)
            .map(|(&a, &b)| (a as f64 - b as f64).abs())
            .sum::<f64>()
            / patch.len() as f64;
        assert!(mean_error < 3.0, "mean abs error {mean_error}");
    }

    #[test]
    fn plan_hash_separates_parts() {
        assert_ne!(plan_hash([&b"ab"[..], b"c"]), plan_hash([&b"a"[..], b"bc"]));
        assert_eq!(plan_hash([&b"x"[..]]), plan_hash([&b"x"[..]]));
    }
}
