//! CIFAR-10 / CIFAR-100, binary version. Each record is the label byte (CIFAR-100: coarse label,
//! then fine label) and 3,072 bytes of pixels: the 1,024 red values of the 32x32 image row by row,
//! then the green, then the blue.

use std::path::{Path, PathBuf};

use crate::dataset::DecodedSet;
use crate::error::DataError;

const SIDE: usize = 32;
const PIXELS: usize = SIDE * SIDE * 3;

/// The files and class names of one split of the set in `dir`, found by their standard names.
fn layout(dir: &Path, training: bool) -> Result<(Vec<PathBuf>, usize, PathBuf), DataError> {
    let cifar10: Vec<PathBuf> = if training {
        (1..=5)
            .map(|i| dir.join(format!("data_batch_{i}.bin")))
            .collect()
    } else {
        vec![dir.join("test_batch.bin")]
    };
    if cifar10.iter().all(|p| p.is_file()) {
        return Ok((cifar10, 1, dir.join("batches.meta.txt")));
    }
    let cifar100 = dir.join(if training { "train.bin" } else { "test.bin" });
    if cifar100.is_file() {
        return Ok((vec![cifar100], 2, dir.join("fine_label_names.txt")));
    }
    Err(DataError::Unreadable {
        path: dir.to_path_buf(),
        reason:
            "no CIFAR binary files (data_batch_1..5.bin + test_batch.bin, or train.bin + test.bin)"
                .into(),
    })
}

/// Reads the training (`training`) or test split of the CIFAR binary set in `dir`.
pub fn load(dir: &Path, training: bool) -> Result<DecodedSet, DataError> {
    if !dir.is_dir() {
        return Err(DataError::not_a_dir(dir));
    }
    let (files, label_bytes, names_file) = layout(dir, training)?;
    let record = label_bytes + PIXELS;
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| DataError::Unreadable {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(DataError::Undecodable {
                path: file.clone(),
                reason: format!(
                    "{} bytes is not a whole number of {record}-byte records",
                    bytes.len()
                ),
            });
        }
        for chunk in bytes.chunks_exact(record) {
            // The fine label is the last label byte (CIFAR-100); CIFAR-10 has only one.
            labels.push(chunk[label_bytes - 1] as usize);
            let planes = &chunk[label_bytes..];
            for position in 0..SIDE * SIDE {
                pixels.extend([0, 1, 2].map(|c| planes[c * SIDE * SIDE + position]));
            }
        }
    }
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let class_names = match std::fs::read_to_string(&names_file) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        Err(_) => (0..classes).map(|c| c.to_string()).collect::<Vec<_>>(),
    };
    if let Some(&bad) = labels.iter().find(|&&l| l >= class_names.len()) {
        return Err(DataError::Undecodable {
            path: names_file,
            reason: format!("label {bad} has no name ({} names)", class_names.len()),
        });
    }
    Ok(DecodedSet::from_patches(SIDE, pixels, labels, class_names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: &[u8], seed: u8) -> Vec<u8> {
        let mut r = label.to_vec();
        r.extend((0..PIXELS).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
        r
    }

    #[test]
    fn cifar10_records_are_read_back_exactly() {
        let dir = std::env::temp_dir().join(format!("alexnet-cifar10-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 1..=5 {
            std::fs::write(
                dir.join(format!("data_batch_{i}.bin")),
                [record(&[i], i), record(&[9], 0)].concat(),
            )
            .unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), record(&[3], 50)).unwrap();
        let names: Vec<String> = (0..10).map(|c| format!("class{c}")).collect();
        std::fs::write(dir.join("batches.meta.txt"), names.join("\n") + "\n\n").unwrap();

        let train = load(&dir, true).unwrap();
        assert_eq!(train.len(), 10);
        assert_eq!(train.labels[..4], [1, 9, 2, 9]);
        assert_eq!(train.class_names, names);
        // Pixel (row 0, column 1) of the first image: planes R, G, B at offset 1, 1025, 2049.
        let expected = |offset: usize, seed: u8| (offset as u8).wrapping_mul(7).wrapping_add(seed);
        assert_eq!(
            &train.patch(0)[3..6],
            &[expected(1, 1), expected(1025, 1), expected(2049, 1)]
        );
        let test = load(&dir, false).unwrap();
        assert_eq!((test.len(), test.labels[0], test.side), (1, 3, 32));

        std::fs::write(dir.join("test_batch.bin"), &record(&[3], 0)[..100]).unwrap();
        let err = load(&dir, false).unwrap_err().to_string();
        assert!(
            err.contains("test_batch.bin") && err.contains("records"),
            "{err}"
        );
    }

    #[test]
    fn cifar100_uses_the_fine_label() {
        let dir = std::env::temp_dir().join(format!("alexnet-cifar100-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("train.bin"),
            [record(&[4, 77], 0), record(&[1, 5], 1)].concat(),
        )
        .unwrap();
        let set = load(&dir, true).unwrap();
        assert_eq!(set.labels, vec![77, 5]);
        assert_eq!(
            set.class_names.len(),
            78,
            "named by number without fine_label_names.txt"
        );
    }
}
