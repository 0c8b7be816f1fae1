//! The ILSVRC-2012 layout as distributed:
//!
//! ```text
//! SRC/train/n01440764/n01440764_10026.JPEG ...   (one folder per WordNet id)
//! SRC/val/ILSVRC2012_val_00000001.JPEG ...       (flat, 50,000 files)
//! ```
//!
//! The flat validation folder is labelled by one of (looked for in SRC, its parent, and the devkit's
//! `data/` folder):
//! - `LOC_val_solution.csv` (the Kaggle release): `ImageId,PredictionString`, the first word of the
//!   prediction string is the WordNet id;
//! - the devkit's `ILSVRC2012_validation_ground_truth.txt` (line i: the ILSVRC2012_ID of image i)
//!   with `meta.mat`, whose `synsets` struct maps ILSVRC2012_ID to WNID. Those ids are *not* the
//!   sorted-WNID order our labels use, which is why the mapping is needed.
//!
//! Class names are the sorted WordNet ids (torchvision's and Caffe's order); their readable names
//! come from `LOC_synset_mapping.txt` or `words.txt` when present. A validation folder that is
//! already sorted into class folders is read as an image folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::bad_input::SkippedFile;
use crate::error::DataError;
use crate::formats::mat5::{self, MatValue};
use crate::image_folder::{ImageFolder, LabelledFile, LabelledSplit, is_image};

const VAL_PREFIX: &str = "ILSVRC2012_val_";

/// Whether `src/val` holds validation images directly (not in class folders).
pub fn has_flat_val(src: &Path) -> bool {
    std::fs::read_dir(src.join("val")).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(VAL_PREFIX) && !e.path().is_dir())
    })
}

/// Where label and name files may be.
fn candidates(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut dirs = vec![src.to_path_buf()];
    if let Some(parent) = src.parent() {
        dirs.push(parent.to_path_buf());
    }
    for devkit in ["devkit", "ILSVRC2012_devkit_t12"] {
        dirs.push(src.join(devkit).join("data"));
    }
    dirs.into_iter().map(|d| d.join(name)).collect()
}

fn find(src: &Path, name: &str) -> Option<PathBuf> {
    candidates(src, name).into_iter().find(|p| p.is_file())
}

fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|e| DataError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// WNID -> readable name, from `LOC_synset_mapping.txt` ("n01440764 tench, Tinca tinca") or
/// `words.txt` ("n01440764<TAB>tench, Tinca tinca").
fn synset_words(src: &Path) -> Result<HashMap<String, String>, DataError> {
    let Some(path) = find(src, "LOC_synset_mapping.txt").or_else(|| find(src, "words.txt")) else {
        return Ok(HashMap::new());
    };
    read_synset_words(&path)
}

/// A synset words file (`n01440764 tench, Tinca tinca` per line: LOC_synset_mapping.txt,
/// words.txt) as a map from the WNID to its words.
pub fn read_synset_words(path: &Path) -> Result<HashMap<String, String>, DataError> {
    Ok(read_text(path)?
        .lines()
        .filter_map(|line| {
            let (id, words) = line.trim().split_once(char::is_whitespace)?;
            Some((id.to_string(), words.trim().to_string()))
        })
        .collect())
}

/// Validation image stem -> WNID, and the file it came from.
fn val_labels(src: &Path) -> Result<(HashMap<String, String>, PathBuf), DataError> {
    if let Some(path) = find(src, "LOC_val_solution.csv") {
        let text = read_text(&path)?;
        let mut labels = HashMap::new();
        for (number, line) in text.lines().enumerate().skip(1) {
            let bad = || DataError::BadLine {
                path: path.clone(),
                line: number + 1,
                expected: "ImageId,PredictionString",
            };
            let (image, prediction) = line.trim().split_once(',').ok_or_else(bad)?;
            let wnid = prediction.split_whitespace().next().ok_or_else(bad)?;
            labels.insert(image.to_string(), wnid.to_string());
        }
        return Ok((labels, path));
    }
    let (Some(truth), Some(meta)) = (
        find(src, "ILSVRC2012_validation_ground_truth.txt"),
        find(src, "meta.mat"),
    ) else {
        return Err(DataError::NoValidationLabels(src.join("val")));
    };
    let bytes = std::fs::read(&meta).map_err(|e| DataError::Unreadable {
        path: meta.clone(),
        reason: e.to_string(),
    })?;
    let bad_meta = |reason: String| DataError::BadMetaMat {
        path: meta.clone(),
        reason,
    };
    let variables = mat5::read_variables(&bytes).map_err(bad_meta)?;
    let synsets = variables
        .iter()
        .find(|(name, _)| name == "synsets")
        .map(|(_, v)| v)
        .ok_or_else(|| bad_meta("no variable `synsets`".into()))?;
    let mut wnid_of_id = HashMap::new();
    for i in 0.. {
        let (Some(MatValue::Numeric(id)), Some(MatValue::Char(wnid))) =
            (synsets.field(i, "ILSVRC2012_ID"), synsets.field(i, "WNID"))
        else {
            break;
        };
        if let Some(&id) = id.first() {
            wnid_of_id.insert(id as u32, wnid.clone());
        }
    }
    if wnid_of_id.is_empty() {
        return Err(bad_meta(
            "`synsets` has no ILSVRC2012_ID / WNID fields".into(),
        ));
    }
    let mut labels = HashMap::new();
    for (i, line) in read_text(&truth)?.lines().enumerate() {
        let id: u32 = line.trim().parse().map_err(|_| DataError::BadLine {
            path: truth.clone(),
            line: i + 1,
            expected: "an ILSVRC2012_ID",
        })?;
        let wnid = wnid_of_id
            .get(&id)
            .ok_or_else(|| DataError::UnknownSynsetId {
                path: truth.clone(),
                line: i + 1,
                id,
                meta: meta.clone(),
            })?;
        labels.insert(format!("{VAL_PREFIX}{:08}", i + 1), wnid.clone());
    }
    Ok((labels, truth))
}

/// The classes of an ILSVRC-2012 layout (WNIDs, with their words when a synset file is found)
/// and its splits.
pub struct IlsvrcLayout {
    pub class_names: Vec<String>,
    pub class_descriptions: Vec<String>,
    pub splits: Vec<LabelledSplit>,
}

pub fn scan(src: &Path) -> Result<IlsvrcLayout, DataError> {
    let train = ImageFolder::scan(&src.join("train"))?;
    let class_names = train.class_names.clone();
    let words = synset_words(src)?;
    let class_descriptions = class_names
        .iter()
        .map(|c| words.get(c).cloned().unwrap_or_default())
        .collect();
    let mut splits = vec![LabelledSplit {
        name: "train".into(),
        problems: train.empty_class_skips(),
        files: train.files,
    }];

    let val_dir = src.join("val");
    if has_flat_val(src) {
        let (labels, labels_file) = val_labels(src)?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&val_dir)
            .map_err(|e| DataError::Unreadable {
                path: val_dir.clone(),
                reason: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.is_dir() && is_image(p))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for path in paths {
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            match labels.get(&stem).map(|w| (w, class_names.binary_search(w))) {
                Some((_, Ok(label))) => files.push(LabelledFile { path, label }),
                Some((wnid, Err(_))) => problems.push(SkippedFile::new(
                    &path,
                    format!("label {wnid} is not one of the training classes"),
                )),
                None => problems.push(SkippedFile::new(
                    &path,
                    format!("no label in {}", labels_file.display()),
                )),
            }
        }
        splits.push(LabelledSplit {
            name: "val".into(),
            files,
            problems,
        });
    } else if val_dir.is_dir() {
        let val = ImageFolder::scan(&val_dir)?;
        let mut problems = val.empty_class_skips();
        let mut files = Vec::new();
        for file in val.files {
            let wnid = &val.class_names[file.label];
            match class_names.binary_search(wnid) {
                Ok(label) => files.push(LabelledFile {
                    path: file.path,
                    label,
                }),
                Err(_) => problems.push(SkippedFile::new(
                    &file.path,
                    format!("class folder {wnid} is not one of the training classes"),
                )),
            }
        }
        splits.push(LabelledSplit {
            name: "val".into(),
            files,
            problems,
        });
    }
    Ok(IlsvrcLayout {
        class_names,
        class_descriptions,
        splits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::mat5::writer::{Field, struct_array};

    fn layout(name: &str) -> PathBuf {
        let src =
            std::env::temp_dir().join(format!("alexnet-ilsvrc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&src);
        for wnid in ["n01440764", "n01443537", "n02102040"] {
            std::fs::create_dir_all(src.join("train").join(wnid)).unwrap();
            std::fs::write(
                src.join("train").join(wnid).join(format!("{wnid}_1.JPEG")),
                b"x",
            )
            .unwrap();
        }
        std::fs::create_dir_all(src.join("val")).unwrap();
        for i in 1..=4 {
            std::fs::write(
                src.join("val").join(format!("{VAL_PREFIX}{i:08}.JPEG")),
                b"x",
            )
            .unwrap();
        }
        src
    }

    fn val_labels_of(layout: &IlsvrcLayout) -> Vec<(String, usize)> {
        layout.splits[1]
            .files
            .iter()
            .map(|f| {
                (
                    f.path.file_name().unwrap().to_string_lossy().into_owned(),
                    f.label,
                )
            })
            .collect()
    }

    #[test]
    fn devkit_ids_are_mapped_through_meta_mat_not_taken_as_sorted_order() {
        let src = layout("devkit");
        // ILSVRC2012_IDs deliberately not in sorted-WNID order: id 1 is the *last* sorted class.
        let rows = vec![
            vec![Field::Number(1.0), Field::Text("n02102040".into())],
            vec![Field::Number(2.0), Field::Text("n01440764".into())],
            vec![Field::Number(3.0), Field::Text("n01443537".into())],
            vec![Field::Number(1001.0), Field::Text("n00001740".into())],
        ];
        let devkit = src.join("ILSVRC2012_devkit_t12/data");
        std::fs::create_dir_all(&devkit).unwrap();
        std::fs::write(
            devkit.join("meta.mat"),
            struct_array("synsets", &["ILSVRC2012_ID", "WNID"], &rows, true),
        )
        .unwrap();
        // Image 4 gets id 1001, which is no training class.
        std::fs::write(
            devkit.join("ILSVRC2012_validation_ground_truth.txt"),
            "1\n3\n2\n1001\n",
        )
        .unwrap();
        std::fs::write(
            src.join("LOC_synset_mapping.txt"),
            "n01440764 tench, Tinca tinca\n",
        )
        .unwrap();
        assert!(has_flat_val(&src));
        let source = scan(&src).unwrap();
        assert_eq!(
            source.class_names,
            vec!["n01440764", "n01443537", "n02102040"]
        );
        assert_eq!(source.class_descriptions[0], "tench, Tinca tinca");
        assert_eq!(
            val_labels_of(&source),
            vec![
                (format!("{VAL_PREFIX}00000001.JPEG"), 2),
                (format!("{VAL_PREFIX}00000002.JPEG"), 1),
                (format!("{VAL_PREFIX}00000003.JPEG"), 0),
            ]
        );
        assert_eq!(source.splits[1].problems.len(), 1);
        assert!(
            source.splits[1].problems[0]
                .reason
                .contains("not one of the training classes")
        );
    }

    #[test]
    fn loc_val_solution_labels_the_flat_folder() {
        let src = layout("loc");
        std::fs::write(
            src.join("LOC_val_solution.csv"),
            "ImageId,PredictionString\n\
             ILSVRC2012_val_00000002,n01443537 1 2 3 4 n01443537 5 6 7 8\n\
             ILSVRC2012_val_00000001,n02102040 1 2 3 4\n\
             ILSVRC2012_val_00000003,n01440764 0 0 9 9\n",
        )
        .unwrap();
        let source = scan(&src).unwrap();
        let labels = val_labels_of(&source);
        assert_eq!(
            labels.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        // Image 4 has no row: reported, not dropped silently.
        assert!(
            source.splits[1].problems[0]
                .path
                .ends_with("ILSVRC2012_val_00000004.JPEG")
        );
        assert!(source.splits[1].problems[0].reason.contains("no label"));
    }

    #[test]
    fn a_flat_val_without_labels_is_a_clear_error() {
        let src = layout("nolabels");
        let err = scan(&src).err().unwrap().to_string();
        assert!(
            err.contains("LOC_val_solution.csv") && err.contains("val"),
            "{err}"
        );
    }
}
