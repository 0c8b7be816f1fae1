//! IDX files (MNIST, Fashion-MNIST): a big-endian header `0, 0, type, dims` then each dimension's
//! size as a u32, then the data. Images are `u8 [n, rows, cols]` (type 0x08, 3 dims), labels
//! `u8 [n]`. Files may be gzip-compressed (`.gz`). Grey images become RGB by repeating the value.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::dataset::DecodedSet;
use crate::error::DataError;

/// The four files' standard names, without `.gz`.
fn file_names(training: bool) -> (&'static str, &'static str) {
    if training {
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    } else {
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    }
}

/// `dir/name` or `dir/name.gz`, whichever exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::Unreadable {
            path: dir.join(name),
            reason: "no such file (nor with .gz)".into(),
        })
}

/// Reads one IDX file of unsigned bytes: its dimensions and data.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bad = |reason: String| DataError::Undecodable {
        path: path.to_path_buf(),
        reason,
    };
    let raw = std::fs::read(path).map_err(|e| DataError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("gzip: {e}")))?;
        out
    } else {
        raw
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not unsigned bytes (0x08)",
            bytes[2]
        )));
    }
    let dims = bytes[3] as usize;
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad("header is cut short".into()));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|d| {
            u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let expected: usize = shape.iter().product();
    if bytes.len() - header != expected {
        return Err(bad(format!(
            "{} data bytes, the header promises {expected}",
            bytes.len() - header
        )));
    }
    Ok((shape, bytes[header..].to_vec()))
}

/// Reads the training (`training`) or test split of the IDX set in `dir`.
pub fn load(dir: &Path, training: bool) -> Result<DecodedSet, DataError> {
    if !dir.is_dir() {
        return Err(DataError::not_a_dir(dir));
    }
    let (images_name, labels_name) = file_names(training);
    let images_path = find(dir, images_name)?;
    let labels_path = find(dir, labels_name)?;
    let (shape, grey) = read_idx(&images_path)?;
    let (label_shape, labels) = read_idx(&labels_path)?;
    if shape.len() != 3 || shape[1] != shape[2] {
        return Err(DataError::Undecodable {
            path: images_path,
            reason: format!("shape {shape:?} is not [n, side, side]"),
        });
    }
    if label_shape != [shape[0]] {
        return Err(DataError::Undecodable {
            path: labels_path,
            reason: format!("{label_shape:?} labels for {} images", shape[0]),
        });
    }
    let labels: Vec<usize> = labels.into_iter().map(usize::from).collect();
    let classes = labels.iter().max().map_or(1, |m| m + 1);
    let class_names = (0..classes).map(|c| c.to_string()).collect();
    let pixels = grey.iter().flat_map(|&v| [v, v, v]).collect();
    Ok(DecodedSet::from_patches(
        shape[1],
        pixels,
        labels,
        class_names,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx_bytes(shape: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, shape.len() as u8];
        for d in shape {
            out.extend(d.to_be_bytes());
        }
        out.extend(data);
        out
    }

    #[test]
    fn plain_and_gzip_idx_files_are_read_back_exactly() {
        let dir = std::env::temp_dir().join(format!("alexnet-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let images: Vec<u8> = (0..3 * 4 * 4).map(|v| v as u8 * 5).collect();
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            idx_bytes(&[3, 4, 4], &images),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&idx_bytes(&[3], &[2, 0, 7])).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();

        let set = load(&dir, true).unwrap();
        assert_eq!((set.len(), set.side), (3, 4));
        assert_eq!(set.labels, vec![2, 0, 7]);
        assert_eq!(set.class_names.len(), 8);
        // Image 1, pixel 2: grey value images[16 + 2], repeated over R, G, B.
        assert_eq!(&set.patch(1)[6..9], &[images[18]; 3]);

        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), b"\x1f\x8bgarbage").unwrap();
        let err = load(&dir, true).unwrap_err().to_string();
        assert!(
            err.contains("train-labels-idx1-ubyte.gz") && err.contains("gzip"),
            "{err}"
        );
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            idx_bytes(&[3, 4, 4], &images[..40]),
        )
        .unwrap();
        let err = load(&dir, true).unwrap_err().to_string();
        assert!(err.contains("header promises 48"), "{err}");
    }

    #[test]
    fn reads_debians_fashion_mnist_when_installed() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if !dir.is_dir() {
            eprintln!(
                "skipped: {} absent (apt-get install dataset-fashion-mnist)",
                dir.display()
            );
            return;
        }
        let test = load(dir, false).unwrap();
        assert_eq!(
            (test.len(), test.side, test.class_names.len()),
            (10_000, 28, 10)
        );
        // Fashion-MNIST's test split is balanced: 1,000 images a class.
        let mut counts = [0usize; 10];
        test.labels.iter().for_each(|&l| counts[l] += 1);
        assert_eq!(counts, [1000; 10]);
    }
}
