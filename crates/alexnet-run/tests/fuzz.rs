//! The parsers of a run's outside data, fed mutations of real files: checkpoints (safetensors
//! with the recipe, classes and progress in their metadata) and recipe TOML. Each returns a value
//! or an error, and never panics, hangs or allocates without bound (this binary's allocator
//! refuses any single request over 1 GiB). `ALEXNET_FUZZ_SECONDS=600` is the long run.

use std::collections::HashMap;
use std::path::Path;

use alexnet_data::DatasetStats;
use alexnet_data::mutate::{CappedAllocator, fuzz};
use alexnet_model::{AlexNet, Arch, ModelConfig};
use alexnet_run::checkpoint::{named_params, velocities_to_named};
use alexnet_run::{Checkpoint, Progress, Recipe, model_from_checkpoint};
use burn::tensor::{Device, Tensor};

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

fn checkpoint_bytes() -> Vec<u8> {
    let device = Device::flex();
    let mut recipe = Recipe {
        model: ModelConfig::new(Arch::AlexnetCifar, 3),
        ..Recipe::default()
    };
    recipe.data.resize = 32;
    let model = AlexNet::new(&recipe.model, &device).unwrap();
    let velocities = HashMap::from([(
        "features.0.conv.bias".to_string(),
        Tensor::<1>::ones([32], &device),
    )]);
    Checkpoint {
        recipe,
        class_names: vec!["a".into(), "b".into(), "c".into()],
        progress: Progress {
            epochs_done: 2,
            step: 20,
            ..Progress::fresh(0.01)
        },
        weights: named_params(&model),
        velocities: velocities_to_named(&velocities),
        stats: DatasetStats::flat(32, [120.0, 110.0, 100.0]),
    }
    .to_bytes()
    .unwrap()
}

#[test]
fn checkpoints() {
    let seed = checkpoint_bytes();
    assert!(Checkpoint::from_bytes(&seed).is_ok());
    // Most mutations of a 480 KB file land in the weights, which the checksums catch; the header
    // and metadata (the first few KB) get seeds of their own, cut where the data begins.
    let header_len = 8 + u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
    let ran = fuzz(
        "checkpoint",
        &[seed.clone(), seed[..header_len + 64].to_vec()],
        |bytes| {
            if let Ok(checkpoint) = Checkpoint::from_bytes(bytes) {
                let _ = model_from_checkpoint(&checkpoint, &Device::flex());
            }
        },
    );
    println!("checkpoint: {ran} inputs");
}

#[test]
fn recipes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    let ran = fuzz("recipe", &seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(recipe) = Recipe::from_toml(&text, "fuzzed.toml", &[]) {
            // What the trainer does first with a recipe: the network it describes.
            let _ = alexnet_model::alexnet::layer_table(&recipe.model);
        }
    });
    println!("recipe: {ran} inputs");
}
