//! `alexnet neighbours RUN_DIR IMAGE...`: the training images nearest to each given image in the
//! last hidden layer, from the run's feature index (built on first use, then reused).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alexnet_data::PatchSource;
use alexnet_data::decode::load_square_patch;
use image::RgbImage;

use crate::canvas::save_png;
use crate::error::ReportError;
use crate::examples::thumbnail;
use crate::neighbours::{Neighbour, patch_features};
use crate::run::{RunModel, display_names, training_split};

#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub run_dir: PathBuf,
    pub images: Vec<PathBuf>,
    pub k: usize,
    /// A prepared data set whose training split the index covers (default: the run's own).
    pub data: Option<PathBuf>,
    /// Where to write one picture per image: the image, then its neighbours.
    pub out: Option<PathBuf>,
    /// A synset words file naming the classes.
    pub synset_words: Option<PathBuf>,
    pub backend: String,
    pub quiet: bool,
}

/// One given image and what is nearest to it.
#[derive(Debug, Clone)]
pub struct Found {
    pub image: PathBuf,
    /// (neighbour, its class name, its training image's name)
    pub neighbours: Vec<(Neighbour, String, String)>,
    pub picture: Option<PathBuf>,
}

/// The neighbours of each of `options.images`, and whether the index had to be built.
pub fn search(options: &SearchOptions) -> Result<(Vec<Found>, bool), ReportError> {
    let run = RunModel::load(&options.run_dir, &options.backend)?;
    let RunModel {
        checkpoint,
        model,
        device,
        ..
    } = &run;
    let side = checkpoint.recipe.data.resize;
    let crop = checkpoint.recipe.model.input_size();
    let stats = Arc::new(checkpoint.stats.clone());
    let train = training_split(checkpoint, options.data.as_deref(), side, options.quiet)
        .map_err(ReportError::NoTrainingSplit)?;
    let (index, built) = run.feature_index(&options.run_dir, &train, 64, options.quiet)?;

    let patches = options
        .images
        .iter()
        .map(|image| load_square_patch(image, side))
        .collect::<Result<Vec<_>, _>>()?;
    let (features, dims) = patch_features(model, &stats, crop, side, patches.concat(), device)?;
    if let Some(out) = &options.out {
        std::fs::create_dir_all(out).map_err(|e| ReportError::Write {
            path: out.clone(),
            reason: e.to_string(),
        })?;
    }
    let names = display_names(&checkpoint.class_names, options.synset_words.as_deref())?;
    let mut found = Vec::new();
    for (i, image) in options.images.iter().enumerate() {
        let nearest = index.nearest(&features[i * dims..(i + 1) * dims], options.k);
        let picture = match &options.out {
            Some(out) => Some(strip(
                out,
                image,
                &patches[i],
                &nearest,
                train.as_ref(),
                side,
            )?),
            None => None,
        };
        found.push(Found {
            image: image.clone(),
            neighbours: nearest
                .iter()
                .map(|n| {
                    let label = train.label(n.index);
                    (*n, names[label].clone(), train.name(n.index))
                })
                .collect(),
            picture,
        });
    }
    Ok((found, built))
}

/// The image and its neighbours side by side, 128 pixels each, as `OUT/<stem>-neighbours.png`.
fn strip(
    out: &Path,
    image: &Path,
    patch: &[u8],
    nearest: &[Neighbour],
    train: &dyn PatchSource,
    side: usize,
) -> Result<PathBuf, ReportError> {
    const SIZE: u32 = 128;
    const GAP: u32 = 8;
    let tiles = 1 + nearest.len() as u32;
    let mut picture = RgbImage::from_pixel(
        tiles * (SIZE + GAP) + GAP,
        SIZE + 2 * GAP,
        image::Rgb([255, 255, 255]),
    );
    let mut place = |position: u32, patch: &[u8]| {
        // The query is set apart from its neighbours by a wider gap.
        let left = GAP + position * (SIZE + GAP) + if position > 0 { GAP / 2 } else { 0 };
        image::imageops::overlay(
            &mut picture,
            &thumbnail(patch, side, SIZE),
            left as i64,
            GAP as i64,
        );
    };
    place(0, patch);
    for (rank, neighbour) in nearest.iter().enumerate() {
        place(rank as u32 + 1, &train.patch(neighbour.index)?);
    }
    let stem = image
        .file_stem()
        .map_or("image".into(), |s| s.to_string_lossy().into_owned());
    let path = out.join(format!("{stem}-neighbours.png"));
    save_png(&picture, &path)?;
    Ok(path)
}
