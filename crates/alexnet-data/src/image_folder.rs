//! The ImageFolder layout: `<root>/<class>/<image>`, classes in sorted folder-name order.

use std::path::{Path, PathBuf};

use crate::bad_input::{EMPTY_CLASS_REASON, SkippedFile};
use crate::error::DataError;

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

#[derive(Debug, Clone, PartialEq)]
pub struct LabelledFile {
    pub path: PathBuf,
    pub label: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    pub root: PathBuf,
    /// Folder names, sorted: label `i` is `class_names[i]`.
    pub class_names: Vec<String>,
    /// Every image, sorted by class then file name.
    pub files: Vec<LabelledFile>,
    /// Class folders without a single image file. Their classes keep their labels (so the labels
    /// agree with other splits), and the bad-input policy decides whether this is an error.
    pub empty_classes: Vec<PathBuf>,
}

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let unreadable = |e: std::io::Error| DataError::Unreadable {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    entries.sort();
    Ok(entries)
}

impl ImageFolder {
    /// The empty class folders as entries of a bad-input report.
    pub fn empty_class_skips(&self) -> Vec<SkippedFile> {
        self.empty_classes
            .iter()
            .map(|dir| SkippedFile::new(dir, EMPTY_CLASS_REASON))
            .collect()
    }

    /// Lists `root`. A missing root or a root without class folders is an error naming it; class
    /// folders without images are listed in `empty_classes`.
    pub fn scan(root: &Path) -> Result<Self, DataError> {
        if !root.is_dir() {
            return Err(DataError::not_a_dir(root));
        }
        let class_dirs: Vec<PathBuf> = read_dir_sorted(root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if class_dirs.is_empty() {
            return Err(DataError::NoClasses(root.to_path_buf()));
        }
        let mut class_names = Vec::new();
        let mut files = Vec::new();
        let mut empty_classes = Vec::new();
        for (label, dir) in class_dirs.iter().enumerate() {
            let images: Vec<PathBuf> = read_dir_sorted(dir)?
                .into_iter()
                .filter(|p| !p.is_dir() && is_image(p))
                .collect();
            if images.is_empty() {
                empty_classes.push(dir.clone());
            }
            class_names.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            files.extend(images.into_iter().map(|path| LabelledFile { path, label }));
        }
        Ok(Self {
            root: root.to_path_buf(),
            class_names,
            files,
            empty_classes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("alexnet-imagefolder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn classes_are_sorted_folders_and_labels_follow() {
        let root = temp_dir("sorted");
        for (class, file) in [
            ("zebra", "b.JPG"),
            ("ant", "a.png"),
            ("ant", "c.jpeg"),
            ("zebra", "notes.txt"),
        ] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            std::fs::write(root.join(class).join(file), b"x").unwrap();
        }
        let folder = ImageFolder::scan(&root).unwrap();
        assert_eq!(folder.class_names, vec!["ant", "zebra"]);
        let labels: Vec<usize> = folder.files.iter().map(|f| f.label).collect();
        assert_eq!(labels, vec![0, 0, 1]);
        assert!(folder.files[2].path.ends_with("zebra/b.JPG"));
    }

    #[test]
    fn missing_empty_and_classless_folders_are_named() {
        let root = temp_dir("errors");
        let missing = root.join("nope");
        let err = ImageFolder::scan(&missing).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("does not exist"),
            "{err}"
        );

        let err = ImageFolder::scan(&root).unwrap_err().to_string();
        assert!(err.contains("no class folders"), "{err}");

        std::fs::create_dir_all(root.join("cat")).unwrap();
        std::fs::write(root.join("cat/readme.txt"), b"x").unwrap();
        std::fs::create_dir_all(root.join("dog")).unwrap();
        std::fs::write(root.join("dog/a.jpg"), b"x").unwrap();
        let folder = ImageFolder::scan(&root).unwrap();
        assert_eq!(folder.class_names, vec!["cat", "dog"]);
        assert_eq!(folder.empty_classes, vec![root.join("cat")]);
        assert_eq!(folder.files[0].label, 1, "dog keeps label 1");
    }
}

/// One split of a source as files with their labels (what a layout's scan finds), and the
/// problems found while listing it (empty class folders, unlabelled files).
#[derive(Debug, Clone)]
pub struct LabelledSplit {
    pub name: String,
    pub files: Vec<LabelledFile>,
    pub problems: Vec<SkippedFile>,
}
