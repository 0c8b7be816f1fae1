//! `alexnet predict CKPT IMAGE...`: the five most probable labels of each image (Figure 4).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use alexnet_data::decode::load_square_patch;
use alexnet_data::formats::ilsvrc::read_synset_words;
use alexnet_data::{BadInputPolicy, BatchLoader, DecodedSet, TestViews};
use alexnet_eval::predictions::model_probabilities;
use alexnet_eval::top_k;
use alexnet_run::Checkpoint;
use alexnet_run::device;
use alexnet_run::{model_from_checkpoint, resolve_checkpoint};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

#[derive(Args)]
pub struct PredictArgs {
    /// Checkpoint file or run directory.
    checkpoint: PathBuf,
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// ImageNet synset words file (`n01440764 tench, Tinca tinca` per line) naming the classes.
    #[arg(long)]
    synset_words: Option<PathBuf>,
    /// How many labels to show.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Average ten views instead of the centre crop.
    #[arg(long)]
    ten_crop: bool,
    /// The views averaged: centre, centre-flip (the centre crop and its reflection: all that is
    /// left of the ten where the crop is the whole image) or ten-crop.
    #[arg(long, conflicts_with = "ten_crop")]
    views: Option<TestViews>,
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Stop at the first unusable image instead of skipping it with a warning.
    #[arg(long)]
    strict: bool,
    /// Also write the predictions as JSON to this file (`[{image, top: [{class, label,
    /// probability}]}]`).
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Prediction {
    image: String,
    top: Vec<Ranked>,
}

#[derive(Serialize)]
struct Ranked {
    class: usize,
    label: String,
    probability: f32,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let device = device(&args.backend, 0)?;
    let path = resolve_checkpoint(&args.checkpoint);
    let checkpoint = Checkpoint::load(&path)?;
    let model =
        model_from_checkpoint(&checkpoint, &device).with_context(|| path.display().to_string())?;
    let words = match &args.synset_words {
        Some(file) => read_synset_words(file)?,
        None => HashMap::new(),
    };
    let label = |class: usize| {
        let name = &checkpoint.class_names[class];
        words
            .get(name)
            .map_or(name.clone(), |w| format!("{name} {w}"))
    };

    let side = checkpoint.recipe.data.resize;
    let policy = BadInputPolicy::strict_if(args.strict);
    let mut pixels = Vec::new();
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    for image in &args.images {
        if let Some(patch) = policy.handle(load_square_patch(image, side), &mut skipped)? {
            pixels.extend(patch);
            images.push(image);
        }
    }
    for skip in &skipped {
        eprintln!("warning: skipped {}: {}", skip.path, skip.reason);
    }
    if images.is_empty() {
        bail!("no usable image among the {} given", args.images.len());
    }
    let set = DecodedSet::from_patches(
        side,
        pixels,
        vec![0; images.len()],
        checkpoint.class_names.clone(),
    );
    let plan = crate::eval::chosen_views(args.ten_crop, args.views).plan();
    let crop = checkpoint.recipe.model.input_size();
    let loader = BatchLoader::new(
        Arc::new(set),
        Arc::new(checkpoint.stats.clone()),
        crop,
        32,
        plan,
        0,
    )?;
    let classes = checkpoint.class_names.len();
    let mut image_paths = images.into_iter();
    let mut predictions = Vec::new();
    for batch in loader.epoch(0, 0) {
        let batch = batch?;
        let probabilities = model_probabilities(&model, &batch, &device);
        for row in probabilities.chunks_exact(classes) {
            let image = image_paths.next().expect("one row per image");
            if row.iter().any(|p| !p.is_finite()) {
                bail!(
                    "{}: the network's output is not a number (are the checkpoint's weights finite?)",
                    image.display()
                );
            }
            println!("{}", image.display());
            let top: Vec<Ranked> = top_k(row, args.top.min(classes))
                .into_iter()
                .map(|class| Ranked {
                    class,
                    label: label(class),
                    probability: row[class],
                })
                .collect();
            for ranked in &top {
                println!("  {:>6.2}%  {}", 100.0 * ranked.probability, ranked.label);
            }
            predictions.push(Prediction {
                image: image.display().to_string(),
                top,
            });
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&predictions)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
