//! Weights in and out, checked against the tools on the other side: a state dict PyTorch wrote
//! (committed under fixtures/interop), torchvision's own alexnet both ways when torch imports,
//! and every model's ONNX graph run by onnxruntime when it imports.

use std::path::{Path, PathBuf};
use std::process::Command;

use alexnet_data::DatasetStats;
use alexnet_data::decode::load_square_patch;
use alexnet_interop::{
    ImportOptions, Preprocess, export_state_dict, import_state_dict, onnx_model,
};
use alexnet_model::{AlexNet, Arch, ModelConfig};
use alexnet_run::checkpoint::named_params;
use alexnet_run::{Checkpoint, Progress, Recipe, model_from_checkpoint};
use burn::tensor::{Device, Tensor, TensorData};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-interop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether `python3` can import `modules`; if not, says why the test is skipped.
fn python_has(modules: &str, install: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: python3 cannot import {modules} ({install})");
    }
    ok
}

fn python(script: &str, args: &[&Path]) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(repo().join("benchmarks").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or_default()
}

/// Our logits for `pixels` (`[N, 3, S, S]` RGB on 0..255): the centre of the checkpoint's mean
/// image subtracted and each channel scaled, as `predict` does for a centre crop, then the network.
fn our_logits(checkpoint: &Checkpoint, pixels: &[f32], batch: usize) -> Vec<f32> {
    let device = Device::flex();
    let crop = checkpoint.recipe.model.input_size();
    let stats = &checkpoint.stats;
    let offset = (stats.side - crop) / 2;
    let mut input = pixels.to_vec();
    for (i, value) in input.iter_mut().enumerate() {
        let (c, y, x) = ((i / (crop * crop)) % 3, (i / crop) % crop, i % crop);
        let mean = stats.mean_image[(c * stats.side + offset + y) * stats.side + offset + x];
        *value = (*value - mean) * stats.input_scale[c];
    }
    let model = model_from_checkpoint(checkpoint, &device).unwrap();
    let images = Tensor::<4>::from_data(TensorData::new(input, [batch, 3, crop, crop]), &device);
    model
        .forward(images)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn max_relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let largest = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / largest
}

/// `[1, 3, S, S]` pixels of an image file, centre-cropped to `crop` from a patch of `side`.
fn image_pixels(path: &Path, side: usize, crop: usize) -> Vec<f32> {
    let patch = load_square_patch(path, side).unwrap();
    let offset = (side - crop) / 2;
    let mut out = vec![0.0; 3 * crop * crop];
    for c in 0..3 {
        for y in 0..crop {
            for x in 0..crop {
                out[(c * crop + y) * crop + x] =
                    f32::from(patch[((offset + y) * side + offset + x) * 3 + c]);
            }
        }
    }
    out
}

#[test]
fn a_state_dict_written_by_pytorch_imports_with_its_logits() {
    let dir = repo().join("fixtures/interop");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let expected: Vec<f32> = serde_json::from_value(expected["logits"].clone()).unwrap();
    let options = ImportOptions {
        arch: Arch::AlexnetCifar,
        preprocess: Preprocess::Torchvision,
        class_names: None,
    };
    let checkpoint = import_state_dict(&dir.join("alexnet-cifar.pth"), &options).unwrap();
    assert_eq!(checkpoint.class_names.len(), 10);
    let pixels = image_pixels(&dir.join("image.png"), 32, 32);
    let ours = our_logits(&checkpoint, &pixels, 1);
    let difference = max_relative_difference(&ours, &expected);
    println!("alexnet-cifar .pth: logits within {difference:.2e} of PyTorch's");
    assert!(difference < 1e-4, "{ours:?} against {expected:?}");

    // The normalisation matters: taken unfolded, the same weights give other logits.
    let unfolded = ImportOptions {
        preprocess: Preprocess::None,
        ..options.clone()
    };
    let raw = import_state_dict(&dir.join("alexnet-cifar.pth"), &unfolded).unwrap();
    assert!(max_relative_difference(&our_logits(&raw, &pixels, 1), &expected) > 1e-2);

    // Out and in again: the exported state dict (torchvision's names, unfolded) imports to the
    // same weights, and the checkpoint file keeps them.
    let out = temp_dir("pth");
    let exported = out.join("exported.safetensors");
    assert_eq!(
        export_state_dict(&checkpoint, &exported, Preprocess::Torchvision).unwrap(),
        10
    );
    let again = import_state_dict(&exported, &options).unwrap();
    for (a, b) in checkpoint.weights.iter().zip(&again.weights) {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
        assert!(
            max_relative_difference(&a.values, &b.values) < 1e-6,
            "{}",
            a.name
        );
    }
    checkpoint.save(&out.join("imported.safetensors")).unwrap();
    let loaded = Checkpoint::load(&out.join("imported.safetensors")).unwrap();
    assert_eq!(our_logits(&loaded, &pixels, 1), ours);

    // Another model's state dict is refused, naming what does not fit.
    let wrong = ImportOptions {
        arch: Arch::AlexnetOwt,
        ..options
    };
    let err = import_state_dict(&dir.join("alexnet-cifar.pth"), &wrong)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a state dict of alexnet-owt"), "{err}");
}

#[test]
fn torchvisions_alexnet_both_ways() {
    if !python_has(
        "torch, torchvision, safetensors",
        "pip install torch torchvision safetensors",
    ) {
        return;
    }
    let dir = temp_dir("torchvision");
    python("torchvision_interop.py", &[Path::new("write"), &dir]);
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let pixels: Vec<f32> = serde_json::from_value(case["pixels"].clone()).unwrap();
    let expected: Vec<f32> = serde_json::from_value(case["logits"].clone()).unwrap();
    let options = ImportOptions {
        arch: Arch::AlexnetOwt,
        preprocess: Preprocess::Torchvision,
        class_names: None,
    };
    let checkpoint = import_state_dict(&dir.join("torchvision.pth"), &options).unwrap();
    let difference = max_relative_difference(&our_logits(&checkpoint, &pixels, 2), &expected);
    println!("torchvision alexnet in: logits within {difference:.2e}");
    assert!(difference < 1e-4, "{difference}");

    export_state_dict(
        &checkpoint,
        &dir.join("exported.safetensors"),
        Preprocess::Torchvision,
    )
    .unwrap();
    let check = python("torchvision_interop.py", &[Path::new("check"), &dir]);
    let worst = check["max_relative_difference"].as_f64().unwrap();
    println!("torchvision alexnet out: {check}");
    assert_eq!(check["keys"], 16);
    assert!(worst < 1e-6, "{worst}");
}

/// A checkpoint of `arch` whose weights have a spread of 1/sqrt(fan-in) (so the logits are of
/// order 1, not the bias alone as with the paper's 0.01) and a mean image that is not flat.
fn scaled_checkpoint(arch: Arch) -> Checkpoint {
    let device = Device::flex();
    let config = ModelConfig::new(arch, 7);
    device.seed(7);
    let model = AlexNet::new(&config, &device).unwrap();
    let mut weights = named_params(&model);
    for tensor in &mut weights {
        if tensor.name.ends_with("weight") {
            let fan_in: usize = if tensor.name.contains("linear") {
                tensor.shape[0]
            } else {
                tensor.shape[1..].iter().product()
            };
            let scale = 1.0 / (config.weight_std as f32 * (fan_in as f32).sqrt());
            tensor.values.iter_mut().for_each(|v| *v *= scale);
        }
    }
    let side = if arch == Arch::AlexnetCifar { 32 } else { 256 };
    let mut recipe = Recipe {
        model: config,
        ..Recipe::default()
    };
    recipe.data.resize = side;
    Checkpoint {
        recipe,
        class_names: (0..7).map(|i| i.to_string()).collect(),
        progress: Progress::fresh(0.01),
        weights,
        velocities: Vec::new(),
        stats: DatasetStats {
            // Not flat: the graph must subtract the right pixel of it.
            mean_image: (0..3 * side * side)
                .map(|i| 100.0 + (i % 61) as f32)
                .collect(),
            // data.normalize's scale on the small net, which the graph must apply after the mean.
            input_scale: if arch == Arch::AlexnetCifar {
                [0.02, 0.015, 0.03]
            } else {
                [1.0; 3]
            },
            ..DatasetStats::flat(side, [0.0; 3])
        },
    }
}

#[test]
fn every_models_onnx_graph_agrees_with_ours_in_onnxruntime() {
    if !python_has(
        "onnxruntime, onnx, numpy",
        "pip install onnxruntime onnx numpy",
    ) {
        return;
    }
    let dir = temp_dir("onnx");
    let images = [
        repo().join("fixtures/cifar10-mini/test/ship/0000.jpg"),
        repo().join("fixtures/cifar10-mini/test/cat/0000.jpg"),
    ];
    for arch in Arch::ALL {
        let checkpoint = scaled_checkpoint(arch);
        let crop = checkpoint.recipe.model.input_size();
        let pixels: Vec<f32> = images
            .iter()
            .flat_map(|path| image_pixels(path, checkpoint.stats.side, crop))
            .collect();
        let logits = our_logits(&checkpoint, &pixels, images.len());
        let model = dir.join(format!("{arch}.onnx"));
        std::fs::write(&model, onnx_model(&checkpoint).unwrap()).unwrap();
        let case = dir.join(format!("{arch}.json"));
        let json = serde_json::json!({
            "shape": [images.len(), 3, crop, crop],
            "pixels": pixels,
            "logits": logits,
        });
        std::fs::write(&case, json.to_string()).unwrap();
        let result = python("onnx_check.py", &[&model, &case]);
        let difference = result["max_relative_difference"].as_f64().unwrap();
        println!("{arch}: onnxruntime within {difference:.2e} of our logits ({result})");
        assert!(difference < 1e-4, "{arch}: {difference}");
    }
}
