//! PyTorch state dicts in and out, under torchvision's names ([`crate::torch_names`]).
//!
//! In: a `.pth` / `.pt` file (torch.save of a state dict, or of a checkpoint dict holding one) is
//! read by burn-store's PyTorch reader, which parses the pickle stream as data and runs none of
//! it; a `.safetensors` state dict by burn-store's safetensors reader. Both rename torchvision's
//! keys to ours and transpose the Linear weights (PyTorch `[out, in]`, Burn `[in, out]`). The
//! result is an ordinary checkpoint: `eval`, `predict` and `report` use it like any other.
//!
//! Out: the same names and layouts, written as a safetensors state dict that
//! `torchvision.models.alexnet().load_state_dict(safetensors.torch.load_file(...))` takes as is.
//!
//! Preprocessing: torchvision's weights expect `(x / 255 - mean) / std` per channel (ImageNet's
//! mean 0.485 0.456 0.406 and std 0.229 0.224 0.225); ours expect `x - mean image` on 0..255.
//! With [`Preprocess::Torchvision`] the import stores the mean as a constant mean image and folds
//! `1 / (255 std)` into conv1's weights, which is exact (conv1 is linear in its input and pads
//! with zeros in both conventions), and the export unfolds it.

use std::path::{Path, PathBuf};

use alexnet_data::DatasetStats;
use alexnet_model::{AlexNet, Arch, ModelConfig};
use alexnet_run::checkpoint::{NamedTensor, named_params};
use alexnet_run::{Checkpoint, Progress, Recipe, model_from_checkpoint};
use burn::tensor::Device;
use burn_store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};

use crate::torch_names::{TorchLayer, torch_layers};

/// torchvision's `transforms.Normalize` constants for ImageNet (per channel, RGB, on 0..1).
pub const TORCHVISION_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const TORCHVISION_STD: [f32; 3] = [0.229, 0.224, 0.225];

#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: not a state dict of {arch}: {reason}")]
    NotThisModel {
        path: PathBuf,
        arch: String,
        reason: String,
    },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{0}")]
    Model(#[from] alexnet_model::ModelError),
    #[error("{0}")]
    Checkpoint(#[from] alexnet_run::CheckpointError),
    #[error(
        "{path}: unknown state dict format (expected .pth, .pt, .bin or .safetensors as its extension)"
    )]
    UnknownFormat { path: PathBuf },
}

/// What the imported weights expect as input, and so how the checkpoint is made to expect ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocess {
    /// torchvision's normalisation (its pretrained weights): folded into conv1.
    Torchvision,
    /// The weights already expect ours (pixels minus the mean image): taken as they are.
    None,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub arch: Arch,
    pub preprocess: Preprocess,
    /// Class names in label order; `None`: "0", "1", ...
    pub class_names: Option<Vec<String>>,
}

/// The patch side a network of `arch` is evaluated from (Section 2: 256 for the 224 crops).
fn patch_side(config: &ModelConfig) -> usize {
    match config.arch {
        Arch::AlexnetCifar => config.input_size(),
        Arch::Alexnet | Arch::AlexnetOwt => 256,
    }
}

/// Renames torchvision's keys to ours (`features.3.weight` -> `features.1.conv.weight`) or back.
fn remapper(layers: &[TorchLayer], torch_to_ours: bool) -> KeyRemapper {
    let pairs = layers.iter().map(|l| {
        let (from, to) = if torch_to_ours {
            (&l.torch, &l.ours)
        } else {
            (&l.ours, &l.torch)
        };
        (
            format!("^{}\\.(weight|bias)$", from.replace('.', "\\.")),
            format!("{to}.$1"),
        )
    });
    KeyRemapper::from_pattern_iter(pairs).expect("escaped names are valid patterns")
}

/// conv1's weights times `scale[c]` for input channel `c` (layout `[out, 3, k, k]`).
fn scale_conv1_inputs(weights: &mut [NamedTensor], scale: [f32; 3]) {
    let conv1 = weights
        .iter_mut()
        .find(|t| t.name == "features.0.conv.weight")
        .expect("every network has conv1");
    let per_channel = conv1.shape[2] * conv1.shape[3];
    for (i, value) in conv1.values.iter_mut().enumerate() {
        *value *= scale[(i / per_channel) % 3];
    }
}

/// `1 / (255 std)`: what conv1 is multiplied by to take `x - 255 mean` instead of torchvision's
/// normalised input.
fn torchvision_fold() -> [f32; 3] {
    TORCHVISION_STD.map(|s| 1.0 / (255.0 * s))
}

/// Reads a PyTorch state dict (`.pth`, `.pt`, `.bin` or `.safetensors`) of `options.arch` into a
/// checkpoint. The number of classes is read from the last layer.
pub fn import_state_dict(path: &Path, options: &ImportOptions) -> Result<Checkpoint, InteropError> {
    let mut config = ModelConfig::new(options.arch, 2);
    let layers = torch_layers(&config)?;
    let read_error = |reason: String| InteropError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let not_this = |reason: String| InteropError::NotThisModel {
        path: path.to_path_buf(),
        arch: options.arch.to_string(),
        reason,
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut store: Box<dyn AnyStore> = match extension.as_str() {
        "pth" | "pt" | "bin" => Box::new(
            PytorchStore::from_file(path)
                .map_indices_contiguous(false)
                .remap(remapper(&layers, true)),
        ),
        "safetensors" => Box::new(
            SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .map_indices_contiguous(false)
                .remap(remapper(&layers, true)),
        ),
        _ => {
            return Err(InteropError::UnknownFormat {
                path: path.to_path_buf(),
            });
        }
    };

    // The classes: the rows of the last layer's weight (PyTorch's [out, in]).
    let last = layers.last().expect("a network has layers");
    let classes = store
        .output_width(&format!("{}.weight", last.ours))
        .map_err(read_error)?
        .ok_or_else(|| not_this(format!("it has no {}.weight (the last layer)", last.torch)))?;
    config.num_classes = classes;
    config.validate()?;
    let class_names = match &options.class_names {
        Some(names) if names.len() != classes => {
            return Err(not_this(format!(
                "its last layer has {classes} classes, the class list {}",
                names.len()
            )));
        }
        Some(names) => names.clone(),
        None => (0..classes).map(|i| i.to_string()).collect(),
    };

    let device = Device::flex();
    let mut model = AlexNet::new(&config, &device)?;
    store.load_into(&mut model).map_err(not_this)?;
    let mut weights = named_params(&model);
    let side = patch_side(&config);
    let mean = match options.preprocess {
        Preprocess::Torchvision => {
            scale_conv1_inputs(&mut weights, torchvision_fold());
            TORCHVISION_MEAN.map(|m| 255.0 * m)
        }
        Preprocess::None => [0.0; 3],
    };
    let mut recipe = Recipe {
        model: config,
        ..Recipe::default()
    };
    recipe.data.resize = side;
    Ok(Checkpoint {
        recipe,
        class_names,
        progress: Progress::fresh(Recipe::default().optim.lr),
        weights,
        velocities: Vec::new(),
        // No training set: this checkpoint is for use, not for resuming a run.
        stats: DatasetStats::flat(side, mean),
    })
}

/// Writes `checkpoint`'s network as a safetensors state dict under torchvision's names and
/// layouts. With [`Preprocess::Torchvision`], conv1 is unfolded back to expect torchvision's
/// normalised input (right for a checkpoint imported that way).
pub fn export_state_dict(
    checkpoint: &Checkpoint,
    out: &Path,
    preprocess: Preprocess,
) -> Result<usize, InteropError> {
    let layers = torch_layers(&checkpoint.recipe.model)?;
    let mut checkpoint = checkpoint.clone();
    if preprocess == Preprocess::Torchvision {
        scale_conv1_inputs(&mut checkpoint.weights, torchvision_fold().map(|f| 1.0 / f));
    }
    let model = model_from_checkpoint(&checkpoint, &Device::flex())?;
    let mut store = SafetensorsStore::from_file(out)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper(&layers, false));
    store
        .collect_from(&model)
        .map_err(|e| InteropError::Write {
            path: out.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(2 * layers.len())
}

/// The two burn-store readers behind one face.
trait AnyStore {
    /// The first dimension of tensor `name` (after renaming), if it is there.
    fn output_width(&mut self, name: &str) -> Result<Option<usize>, String>;
    /// Loads every parameter of `model`; a missing, extra or misshapen tensor is an error.
    fn load_into(&mut self, model: &mut AlexNet) -> Result<(), String>;
}

impl<S: ModuleStore> AnyStore for S
where
    S::Error: std::fmt::Display,
{
    fn output_width(&mut self, name: &str) -> Result<Option<usize>, String> {
        let tensor = self.get_tensor(name).map_err(|e| e.to_string())?;
        Ok(tensor.and_then(|t| t.shape.first().copied()))
    }

    fn load_into(&mut self, model: &mut AlexNet) -> Result<(), String> {
        let result = model.load_from(self).map_err(|e| e.to_string())?;
        if let Some(error) = result.errors.first() {
            return Err(error.to_string());
        }
        if let Some((missing, _)) = result.missing.first() {
            return Err(format!("{missing} is missing"));
        }
        if let Some(unused) = result.unused.first() {
            return Err(format!(
                "it holds {unused}, which this network does not have"
            ));
        }
        Ok(())
    }
}
