//! Checkpoints: one safetensors file holding everything a run needs to go on or to be used.
//!
//! Tensors: `model.<path>` (weights), `velocity.<path>` (the SGD momentum buffers), `stats.mean_image`,
//! `stats.eigenvalues`, `stats.eigenvectors` (so that eval and predict need only this file).
//! Metadata: the recipe (TOML), class names (JSON), and the progress (epoch, step, learning rate,
//! schedule state) as JSON. Files are written to a temporary name and renamed over the old one, so a
//! crash mid-write never leaves a half-written checkpoint under the real name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use alexnet_data::tensor_file::{tensors_from_bytes, tensors_to_bytes};
use alexnet_data::{DatasetStats, StagedFile, write_atomic};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use alexnet_model::Precision;

use crate::recipe::Recipe;
use crate::schedule::LrSchedule;

const FORMAT: &str = "alexnet-checkpoint-1";

type Metadata = HashMap<String, String>;
/// Tensors by group (`model`, `velocity`, `stats`).
type TensorGroups = HashMap<String, Vec<NamedTensor>>;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot write checkpoint: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: not a readable alexnet checkpoint: {problem}")]
    Invalid {
        path: PathBuf,
        problem: CheckpointFormatError,
    },
    #[error("checkpoint does not fit the model: {0}")]
    Mismatch(String),
}

/// What is wrong with a checkpoint's bytes.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFormatError {
    #[error("{0}")]
    Safetensors(String),
    #[error("its metadata `format` is not {FORMAT}")]
    Format,
    #[error("its metadata has no `{0}`")]
    MissingField(&'static str),
    #[error("its metadata `{field}` cannot be read: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("tensor `{0}` belongs to no group (model., velocity., stats.)")]
    Ungrouped(String),
    #[error("its statistics: {0}")]
    Stats(String),
}

pub use alexnet_data::NamedTensor;

/// Where training stands after `epochs_done` complete epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub epochs_done: usize,
    pub step: u64,
    pub schedule: LrSchedule,
    pub wall_seconds: f64,
}

impl Progress {
    /// Nothing done yet: epoch 0, step 0, the schedule at its first rate `lr`.
    pub fn fresh(lr: f64) -> Self {
        Self {
            epochs_done: 0,
            step: 0,
            schedule: LrSchedule::new(lr),
            wall_seconds: 0.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub recipe: Recipe,
    pub class_names: Vec<String>,
    pub progress: Progress,
    pub weights: Vec<NamedTensor>,
    pub velocities: Vec<NamedTensor>,
    pub stats: DatasetStats,
}

/// Every float parameter of `model` with its path, e.g. `features.0.conv.weight`.
pub fn named_params<M: Module>(model: &M) -> Vec<NamedTensor> {
    struct Collector {
        path: Vec<String>,
        out: Vec<NamedTensor>,
    }
    impl ModuleVisitor for Collector {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            self.out.push(NamedTensor {
                name: self.path.join("."),
                shape: tensor.dims().to_vec(),
                values: tensor
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 after convert"),
            });
        }
    }
    let mut collector = Collector {
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut collector);
    collector.out
}

/// Replaces every float parameter of `model` by the tensor of the same path in `tensors`.
pub fn load_params<M: Module>(model: M, tensors: &[NamedTensor]) -> Result<M, CheckpointError> {
    struct Loader<'a> {
        path: Vec<String>,
        tensors: HashMap<&'a str, &'a NamedTensor>,
        error: Option<String>,
        loaded: usize,
    }
    impl ModuleMapper for Loader<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let name = self.path.join(".");
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.dims().to_vec();
            match self.tensors.get(name.as_str()) {
                Some(stored) if stored.shape == shape => {
                    let mut value = Tensor::<D>::from_data(
                        TensorData::new(stored.values.clone(), stored.shape.clone()),
                        &tensor.device(),
                    );
                    if tensor.is_require_grad() {
                        value = value.require_grad();
                    }
                    self.loaded += 1;
                    Param::from_mapped_value(id, value, mapper)
                }
                found => {
                    let reason = match found {
                        Some(stored) => format!(
                            "{name} has shape {:?}, the model wants {shape:?}",
                            stored.shape
                        ),
                        None => format!("{name} is missing"),
                    };
                    self.error.get_or_insert(reason);
                    Param::from_mapped_value(id, tensor, mapper)
                }
            }
        }
    }
    let mut loader = Loader {
        path: Vec::new(),
        tensors: tensors.iter().map(|t| (t.name.as_str(), t)).collect(),
        error: None,
        loaded: 0,
    };
    let model = model.map(&mut loader);
    match loader.error {
        Some(reason) => Err(CheckpointError::Mismatch(reason)),
        None if loader.loaded != tensors.len() => Err(CheckpointError::Mismatch(format!(
            "{} stored tensors, the model has {}",
            tensors.len(),
            loader.loaded
        ))),
        None => Ok(model),
    }
}

/// SGD velocities (flattened, by path) to named host tensors, and back.
pub fn velocities_to_named(velocities: &HashMap<String, Tensor<1>>) -> Vec<NamedTensor> {
    let mut out: Vec<NamedTensor> = velocities
        .iter()
        .map(|(name, v)| NamedTensor {
            name: name.clone(),
            shape: v.dims().to_vec(),
            values: v
                .to_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 after convert"),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn velocities_from_named(named: &[NamedTensor], device: &Device) -> HashMap<String, Tensor<1>> {
    named
        .iter()
        .map(|t| {
            let tensor =
                Tensor::from_data(TensorData::new(t.values.clone(), [t.values.len()]), device);
            (t.name.clone(), tensor)
        })
        .collect()
}

/// A checkpoint's metadata and its tensors by group (`model.conv1...` is `conv1...` in group
/// `model`), from its bytes.
fn group_tensors(bytes: &[u8]) -> Result<(Metadata, TensorGroups), CheckpointFormatError> {
    let (metadata, tensors) =
        tensors_from_bytes(bytes).map_err(CheckpointFormatError::Safetensors)?;
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(CheckpointFormatError::Format);
    }
    let mut groups: TensorGroups = HashMap::new();
    for mut tensor in tensors {
        let (group, rest) = tensor
            .name
            .split_once('.')
            .map(|(g, r)| (g.to_string(), r.to_string()))
            .ok_or_else(|| CheckpointFormatError::Ungrouped(tensor.name.clone()))?;
        tensor.name = rest;
        groups.entry(group).or_default().push(tensor);
    }
    // The file's tensors come in no fixed order: give each group one, by name.
    for tensors in groups.values_mut() {
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok((metadata, groups))
}

impl Checkpoint {
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let write_error = |reason: String| CheckpointError::Write {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = self.to_bytes().map_err(|e| write_error(e.to_string()))?;
        write_atomic(path, &bytes).map_err(|e| write_error(e.to_string()))
    }

    /// Writes the checkpoint beside `path`, synced but not yet visible under it: the caller
    /// commits it when the rest of the epoch's record is written.
    pub fn stage(&self, path: &Path) -> Result<StagedFile, CheckpointError> {
        let write_error = |reason: String| CheckpointError::Write {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = self.to_bytes().map_err(|e| write_error(e.to_string()))?;
        StagedFile::write(path, &bytes).map_err(|e| write_error(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|e| CheckpointError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes).map_err(|problem| CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// How far the run of the checkpoint at `path` had got, from its header alone (what deciding
    /// to skip or resume a run needs, without reading and checking every weight).
    pub fn read_progress(path: &Path) -> Result<Progress, CheckpointError> {
        let invalid = |problem| CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        let metadata = alexnet_data::read_metadata(path)
            .map_err(|e| invalid(CheckpointFormatError::Safetensors(e.to_string())))?;
        let text = metadata
            .get("progress")
            .ok_or(invalid(CheckpointFormatError::MissingField("progress")))?;
        serde_json::from_str(text).map_err(|e| {
            invalid(CheckpointFormatError::BadField {
                field: "progress",
                reason: e.to_string(),
            })
        })
    }

    /// The file's bytes (also what rank 0 of a data-parallel run sends the others to start from).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointFormatError> {
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("recipe".to_string(), self.recipe.to_toml()),
            (
                "class_names".to_string(),
                serde_json::to_string(&self.class_names).expect("strings serialize"),
            ),
            (
                "progress".to_string(),
                serde_json::to_string(&self.progress).expect("progress serializes"),
            ),
        ]);
        let stats = self.stats.to_tensors();
        let groups: [(&str, &[NamedTensor]); 3] = [
            ("model", &self.weights),
            ("velocity", &self.velocities),
            ("stats", &stats),
        ];
        let tensors: Vec<_> = groups
            .iter()
            .flat_map(|(prefix, tensors)| tensors.iter().map(|t| t.borrowed(prefix)))
            .collect();
        tensors_to_bytes(&tensors, metadata).map_err(CheckpointFormatError::Safetensors)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointFormatError> {
        let (metadata, mut groups) = group_tensors(bytes)?;
        let field = |key: &'static str| {
            metadata
                .get(key)
                .ok_or(CheckpointFormatError::MissingField(key))
        };
        let bad = |field: &'static str| {
            move |e: &dyn std::fmt::Display| CheckpointFormatError::BadField {
                field,
                reason: e.to_string(),
            }
        };
        let recipe = Recipe::from_toml(field("recipe")?, "checkpoint recipe", &[])
            .map_err(|e| bad("recipe")(&e))?;
        let class_names: Vec<String> =
            serde_json::from_str(field("class_names")?).map_err(|e| bad("class_names")(&e))?;
        let progress: Progress =
            serde_json::from_str(field("progress")?).map_err(|e| bad("progress")(&e))?;
        let stats = DatasetStats::from_tensors(&groups.remove("stats").unwrap_or_default())
            .map_err(CheckpointFormatError::Stats)?;
        Ok(Self {
            recipe,
            class_names,
            progress,
            weights: groups.remove("model").unwrap_or_default(),
            velocities: groups.remove("velocity").unwrap_or_default(),
            stats,
        })
    }
}

/// A checkpoint path, or a run directory (its `best.safetensors`, else its `last.safetensors`).
pub fn resolve_checkpoint(path: &Path) -> PathBuf {
    if path.is_dir() {
        let best = path.join("best.safetensors");
        if best.exists() {
            return best;
        }
        return path.join("last.safetensors");
    }
    path.to_path_buf()
}

/// Rebuilds the network a checkpoint was trained as, with its weights, in evaluation mode.
pub fn model_from_checkpoint(
    checkpoint: &Checkpoint,
    device: &Device,
) -> Result<alexnet_model::AlexNet, CheckpointError> {
    let mut config = checkpoint.recipe.model.clone();
    // bf16 products are a training option; a CPU without them evaluates the weights in f32.
    if config.precision == Precision::Bf16 && !alexnet_model::bf16_gemm::available() {
        config.precision = Precision::F32;
    }
    let model = alexnet_model::AlexNet::new(&config, device)
        .map_err(|e| CheckpointError::Mismatch(e.to_string()))?;
    Ok(load_params(model, &checkpoint.weights)?.valid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_model::{AlexNet, Arch, ModelConfig};

    fn stats() -> DatasetStats {
        DatasetStats {
            side: 2,
            mean_image: (0..12).map(|v| v as f32).collect(),
            eigenvalues: [3.0, 2.0, 1.0],
            eigenvectors: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            input_scale: [0.5, 0.25, 2.0], // data.normalize's, which eval must get back
        }
    }

    #[test]
    fn a_checkpoint_round_trips_and_rebuilds_the_same_network() {
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
        let checkpoint = Checkpoint {
            recipe: recipe.clone(),
            class_names: vec!["a".into(), "b".into(), "c".into()],
            progress: Progress {
                epochs_done: 4,
                step: 40,
                schedule: LrSchedule::new(0.001),
                wall_seconds: 1.5,
            },
            weights: named_params(&model),
            velocities: velocities_to_named(&velocities),
            stats: stats(),
        };
        let dir = std::env::temp_dir().join(format!("alexnet-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        checkpoint.save(&path).unwrap();
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "the temporary file was renamed"
        );

        let loaded = Checkpoint::load(&path).unwrap();
        assert_eq!(
            Checkpoint::read_progress(&path).unwrap(),
            checkpoint.progress
        );
        assert_eq!(loaded.recipe, recipe);
        assert_eq!(loaded.progress, checkpoint.progress);
        assert_eq!(loaded.stats, checkpoint.stats);
        assert_eq!(loaded.velocities, checkpoint.velocities);
        let rebuilt = model_from_checkpoint(&loaded, &device).unwrap();
        let input =
            Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Default, &device);
        let a = model
            .valid()
            .forward(input.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let b = rebuilt
            .forward(input)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(a, b);

        // Weights of another variant do not fit: the error names the first bad tensor.
        let other = AlexNet::new(&ModelConfig::new(Arch::AlexnetCifar, 5), &device).unwrap();
        let err = load_params(other, &loaded.weights).unwrap_err().to_string();
        assert!(
            err.contains("classifier.1.linear") && err.contains("shape"),
            "{err}"
        );

        std::fs::write(&path, b"not a checkpoint").unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("c.safetensors"), "{err}");
    }
}
