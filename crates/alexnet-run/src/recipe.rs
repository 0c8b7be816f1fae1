//! The recipe: every number of a training run, with the paper's values as defaults.
//!
//! Loaded from TOML (`recipes/*.toml` name only what they change), then overridden field by field
//! from the command line (`--set optim.lr=0.02`), printed at the start of a run and saved in it.

use std::path::{Path, PathBuf};

use alexnet_data::{BadInputPolicy, DataFormat, Shuffle, TestViews};
use alexnet_model::{ModelConfig, ModelError};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{path}: cannot read recipe: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("recipe {source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error("recipe {source_name}: {error}")]
    Field {
        source_name: String,
        error: FieldError,
    },
    /// A value given on the command line: the error names the flag as it was typed.
    #[error("{origin}: {reason}")]
    Flag { origin: String, reason: String },
    #[error("override `{0}`: expected KEY=VALUE, e.g. optim.lr=0.02")]
    BadOverride(String),
}

/// One field set on the command line, with what the user typed to set it (`--model resnet50`,
/// `--set optim.lr=0.02`), so that an error about the field names the flag, not the recipe file.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// `KEY=VALUE`, KEY a dotted TOML path.
    pub assignment: String,
    pub origin: String,
}

impl Override {
    /// `--set KEY=VALUE`.
    pub fn set(assignment: &str) -> Self {
        Self {
            assignment: assignment.to_string(),
            origin: format!("--set {assignment}"),
        }
    }

    /// A shorthand flag: `flag` as typed (`--batch-size 0`) sets `assignment`.
    pub fn flag(flag: String, assignment: String) -> Self {
        Self {
            assignment,
            origin: flag,
        }
    }

    fn key(&self) -> Option<&str> {
        self.assignment.split_once('=').map(|(key, _)| key.trim())
    }
}

/// A recipe field whose value is out of its range, by the field's TOML path.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FieldError {
    #[error("{field} must be {range}, got {value}")]
    OutOfRange {
        field: &'static str,
        range: &'static str,
        value: String,
    },
    #[error("data.resize {resize} is smaller than the model's input size {input}")]
    ResizeBelowInput { resize: usize, input: usize },
    #[error("{0}")]
    Model(ModelError),
}

impl FieldError {
    /// The TOML path of the field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            FieldError::OutOfRange { field, .. } => field,
            FieldError::ResizeBelowInput { .. } => "data.resize",
            FieldError::Model(error) => error.field(),
        }
    }
}

/// The largest side of a stored patch (`data.resize`, and `prepare --side`).
pub const MAX_SIDE: usize = 4096;

fn check(
    ok: bool,
    field: &'static str,
    range: &'static str,
    value: impl ToString,
) -> Result<(), FieldError> {
    if ok {
        Ok(())
    } else {
        Err(FieldError::OutOfRange {
            field,
            range,
            value: value.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    pub model: ModelConfig,
    pub data: DataRecipe,
    pub optim: OptimRecipe,
    pub schedule: ScheduleRecipe,
    pub run: RunRecipe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataRecipe {
    /// `image-folder` (a root holding `<train_split>/<class>/*` and `<val_split>/<class>/*`),
    /// `cifar` (CIFAR-10/100 binary files), `idx` (MNIST, Fashion-MNIST) or `shards` (a directory
    /// made by `alexnet prepare`).
    pub format: DataFormat,
    pub dir: PathBuf,
    pub train_split: String,
    /// Split used for the plateau policy and per-epoch validation error.
    pub val_split: String,
    /// The views of each validation image the per-epoch error averages the softmax over:
    /// `centre` (the default), `centre-flip` (and its reflection) or `ten-crop` (Section 4.1).
    pub val_views: TestViews,
    /// Section 2: images are rescaled so the shorter side is this, then centre-cropped to a square.
    /// The crop fed to the network is the model's input size (224, Section 4.1).
    pub resize: usize,
    /// Section 4.1: random horizontal reflections.
    pub flip: bool,
    /// Section 4.1: standard deviation of the PCA colour noise coefficients (0 turns it off).
    pub pca_sigma: f32,
    /// Not in the paper: divide every input channel by its standard deviation over the training
    /// set once the mean image is subtracted (torchvision's `Normalize`), instead of feeding the
    /// raw 0..255 differences.
    pub normalize: bool,
    /// Batches built ahead of the training step.
    pub prefetch: usize,
    /// The order of a training epoch: `global` (one permutation of the whole set) or `shards`
    /// (shards in a random order, mixed `shuffle_window` at a time: for a set larger than memory).
    pub shuffle: Shuffle,
    /// Shards whose images are mixed together under `shuffle = "shards"`.
    pub shuffle_window: usize,
    /// A file that cannot be read or decoded stops the run instead of being skipped and listed in
    /// the run's `skipped.tsv`.
    pub strict: bool,
}

impl DataRecipe {
    pub fn bad_input_policy(&self) -> BadInputPolicy {
        BadInputPolicy::strict_if(self.strict)
    }
}

impl Default for DataRecipe {
    fn default() -> Self {
        Self {
            format: DataFormat::ImageFolder,
            dir: PathBuf::from("data/imagenet"),
            train_split: "train".into(),
            val_split: "val".into(),
            val_views: TestViews::Centre,
            resize: 256,
            flip: true,
            pca_sigma: 0.1,
            normalize: false,
            prefetch: 3,
            shuffle: Shuffle::Global,
            shuffle_window: 16,
            strict: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimRecipe {
    /// Section 5: "batch size of 128 examples".
    pub batch_size: usize,
    /// Section 5: "The learning rate was initialized at 0.01".
    pub lr: f64,
    /// Section 5: "momentum of 0.9".
    pub momentum: f64,
    /// Section 5: "weight decay of 0.0005".
    pub weight_decay: f64,
    /// Not in the paper: the target's share spread over the other classes (Szegedy et al.
    /// 2016); 0 is the paper's plain cross-entropy.
    pub label_smoothing: f64,
}

impl Default for OptimRecipe {
    fn default() -> Self {
        Self {
            batch_size: 128,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0005,
            label_smoothing: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrPolicy {
    /// Section 5: "divide the learning rate by 10 when the validation error rate stopped improving".
    Plateau,
    /// Every `step_epochs` epochs (Caffe's and torchvision's recipes).
    Step,
    /// Never changes.
    Fixed,
    /// Not in the paper: a linear warm-up over `schedule.warmup_epochs`, then a half cosine from
    /// `optim.lr` down to 0 at the last epoch, set at every step (Goyal et al. 2017's warm-up,
    /// Loshchilov & Hutter 2017's cosine): the field's way to a given accuracy in fewer epochs.
    Cosine,
    /// Not in the paper: Smith & Topin's (2019) one cycle, as PyTorch's `OneCycleLR`: a half
    /// cosine up from `optim.lr / div_factor` to `optim.lr` over `schedule.warmup_epochs`, then
    /// down to `optim.lr / (div_factor * final_div_factor)` at the last step. The high rate of
    /// the middle trains a small net to a given accuracy in the fewest epochs.
    OneCycle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleRecipe {
    pub policy: LrPolicy,
    /// Multiplier at each drop (Section 5: divided by 10).
    pub factor: f64,
    /// Plateau: epochs without a validation top-1 improvement before a drop. The paper gives no
    /// number; 3 epochs of 90.
    pub patience: usize,
    /// Plateau: an improvement smaller than this (absolute error) does not count.
    pub min_delta: f64,
    /// Section 5: "reduced three times prior to termination".
    pub max_drops: usize,
    /// Step: epochs between drops.
    pub step_epochs: usize,
    /// Cosine: epochs (a fraction allowed) of linear warm-up from 0 to `optim.lr`; one cycle:
    /// epochs of its rise.
    pub warmup_epochs: f64,
    /// One cycle: the first step's rate is `optim.lr` divided by this (PyTorch's 25).
    pub div_factor: f64,
    /// One cycle: the last step's rate is the first's divided by this (PyTorch's 1e4).
    pub final_div_factor: f64,
}

impl Default for ScheduleRecipe {
    fn default() -> Self {
        Self {
            policy: LrPolicy::Plateau,
            factor: 0.1,
            patience: 3,
            min_delta: 0.001,
            max_drops: 3,
            step_epochs: 30,
            warmup_epochs: 0.0,
            div_factor: 25.0,
            final_div_factor: 1e4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunRecipe {
    /// Section 5: "roughly 90 cycles through the training set".
    pub epochs: usize,
    pub seed: u64,
    /// Compute backend: `flex` (pure Rust CPU), or `cuda` / `wgpu` when built with those features.
    pub backend: String,
    /// Not in the paper: validate after every this many epochs (Caffe's `test_interval`), and
    /// always after the last; 1 validates every epoch, as the plateau policy needs.
    pub validate_every: usize,
}

impl Default for RunRecipe {
    fn default() -> Self {
        Self {
            epochs: 90,
            seed: 0,
            backend: "flex".into(),
            validate_every: 1,
        }
    }
}

/// Sets `dotted.key` in a TOML tree to `raw`, read as a TOML value (a number, bool, string, array)
/// or, failing that, as a bare string.
fn set_dotted(tree: &mut toml::Table, key: &str, raw: &str) -> Result<(), RecipeError> {
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts
        .pop()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| RecipeError::BadOverride(key.into()))?;
    let mut table = tree;
    for part in parts {
        table = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| RecipeError::BadOverride(format!("{key}={raw}")))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

impl Recipe {
    /// Reads `path` (or the paper's defaults when `None`) and applies `overrides` (`KEY=VALUE`).
    pub fn load(path: Option<&Path>, overrides: &[Override]) -> Result<Self, RecipeError> {
        let (text, source_name) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| RecipeError::Unreadable {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "(paper defaults)".to_string()),
        };
        Self::from_toml(&text, &source_name, overrides)
    }

    /// Parses `text`, applies `overrides`, checks every field. An error names the field by its
    /// TOML path, and blames the flag that set the field when one did, else `source_name`.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        overrides: &[Override],
    ) -> Result<Self, RecipeError> {
        let invalid = |reason: String| RecipeError::Invalid {
            source_name: source_name.to_string(),
            reason: reason.trim().replace('\n', " "),
        };
        let mut tree: toml::Table =
            toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        for item in overrides {
            let (key, raw) = item
                .assignment
                .split_once('=')
                .ok_or_else(|| RecipeError::BadOverride(item.assignment.clone()))?;
            set_dotted(&mut tree, key.trim(), raw.trim())?;
        }
        // The flag that last set `field`, if any did.
        let set_by = |field: &str| overrides.iter().rev().find(|o| o.key() == Some(field));
        let blame = |field: &str, reason: String| match set_by(field) {
            Some(flag) => RecipeError::Flag {
                origin: flag.origin.clone(),
                reason,
            },
            None => invalid(reason),
        };
        let recipe: Recipe =
            serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
                let field = e.path().to_string();
                let reason = e.into_inner().message().trim().replace('\n', " ");
                blame(&field, format!("{field}: {reason}"))
            })?;
        recipe
            .validate()
            .map_err(|error| match set_by(error.field()) {
                Some(flag) => RecipeError::Flag {
                    origin: flag.origin.clone(),
                    reason: error.to_string(),
                },
                None => RecipeError::Field {
                    source_name: source_name.to_string(),
                    error,
                },
            })?;
        Ok(recipe)
    }

    /// Range checks on the fields that serde's types do not already check: every number of a
    /// recipe has a range (docs/recipes.md lists them), and a value outside it is an error naming
    /// the field, before anything is built with it.
    pub fn validate(&self) -> Result<(), FieldError> {
        let (optim, data, schedule, run) = (&self.optim, &self.data, &self.schedule, &self.run);
        let finite_at_least = |v: f64, low: f64| v.is_finite() && v >= low;
        check(
            (1..=65_536).contains(&optim.batch_size),
            "optim.batch_size",
            "in 1..=65536",
            optim.batch_size,
        )?;
        check(
            optim.lr > 0.0 && optim.lr.is_finite(),
            "optim.lr",
            "positive and finite",
            optim.lr,
        )?;
        check(
            (0.0..1.0).contains(&optim.momentum),
            "optim.momentum",
            "in [0, 1)",
            optim.momentum,
        )?;
        check(
            finite_at_least(optim.weight_decay, 0.0),
            "optim.weight_decay",
            ">= 0 and finite",
            optim.weight_decay,
        )?;
        check(
            (0.0..1.0).contains(&optim.label_smoothing),
            "optim.label_smoothing",
            "in [0, 1)",
            optim.label_smoothing,
        )?;
        check(
            finite_at_least(schedule.warmup_epochs, 0.0),
            "schedule.warmup_epochs",
            ">= 0 and finite",
            schedule.warmup_epochs,
        )?;
        for (value, field) in [
            (schedule.div_factor, "schedule.div_factor"),
            (schedule.final_div_factor, "schedule.final_div_factor"),
        ] {
            check(finite_at_least(value, 1.0), field, ">= 1 and finite", value)?;
        }
        check(
            schedule.factor > 0.0 && schedule.factor < 1.0,
            "schedule.factor",
            "in (0, 1)",
            schedule.factor,
        )?;
        check(
            schedule.patience <= 10_000,
            "schedule.patience",
            "in 0..=10000",
            schedule.patience,
        )?;
        check(
            finite_at_least(schedule.min_delta, 0.0) && schedule.min_delta < 1.0,
            "schedule.min_delta",
            "in [0, 1)",
            schedule.min_delta,
        )?;
        check(
            schedule.max_drops <= 100,
            "schedule.max_drops",
            "in 0..=100",
            schedule.max_drops,
        )?;
        check(
            (1..=1_000_000).contains(&schedule.step_epochs),
            "schedule.step_epochs",
            "in 1..=1000000",
            schedule.step_epochs,
        )?;
        check(
            (1..=1_000_000).contains(&run.epochs),
            "run.epochs",
            "in 1..=1000000",
            run.epochs,
        )?;
        check(
            (1..=1_000_000).contains(&run.validate_every),
            "run.validate_every",
            "in 1..=1000000",
            run.validate_every,
        )?;
        check(
            run.validate_every == 1 || schedule.policy != LrPolicy::Plateau,
            "run.validate_every",
            "1 under schedule.policy = \"plateau\", which reads every epoch's validation error",
            run.validate_every,
        )?;
        check(
            finite_at_least(f64::from(data.pca_sigma), 0.0),
            "data.pca_sigma",
            ">= 0 and finite",
            data.pca_sigma,
        )?;
        // The decoded patches are held in memory: 4096^2 x 3 bytes is 50 MB an image already
        // (and `prepare --side` has the same bound).
        check(
            (1..=MAX_SIDE).contains(&data.resize),
            "data.resize",
            "in 1..=4096",
            data.resize,
        )?;
        check(
            (1..=64).contains(&data.prefetch),
            "data.prefetch",
            "in 1..=64",
            data.prefetch,
        )?;
        check(
            (1..=1_000_000).contains(&data.shuffle_window),
            "data.shuffle_window",
            "in 1..=1000000",
            data.shuffle_window,
        )?;
        self.model.validate().map_err(FieldError::Model)?;
        let input = self.model.input_size();
        if data.resize < input {
            return Err(FieldError::ResizeBelowInput {
                resize: data.resize,
                input,
            });
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a recipe always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(items: &[&str]) -> Vec<Override> {
        items.iter().map(|item| Override::set(item)).collect()
    }

    #[test]
    fn defaults_are_the_papers_numbers() {
        let r = Recipe::default();
        assert_eq!(
            (
                r.optim.batch_size,
                r.optim.lr,
                r.optim.momentum,
                r.optim.weight_decay
            ),
            (128, 0.01, 0.9, 0.0005)
        );
        assert_eq!(
            (r.data.resize, r.model.input_size(), r.data.pca_sigma),
            (256, 224, 0.1)
        );
        assert_eq!(
            (r.schedule.factor, r.schedule.max_drops, r.run.epochs),
            (0.1, 3, 90)
        );
        assert_eq!(r.model.dropout, 0.5);
    }

    #[test]
    fn toml_then_overrides_then_round_trip() {
        let text = "[optim]\nlr = 0.02\n[model]\narch = \"alexnet-cifar\"\n";
        let r = Recipe::from_toml(
            text,
            "test",
            &sets(&["optim.batch_size=64", "data.dir=/tmp/x", "model.lrn=false"]),
        )
        .unwrap();
        assert_eq!(r.optim.lr, 0.02);
        assert_eq!(r.optim.batch_size, 64);
        assert_eq!(r.data.dir, PathBuf::from("/tmp/x"));
        assert_eq!(r.model.lrn, Some(false));
        assert_eq!(r.model.input_size(), 32);
        let again = Recipe::from_toml(&r.to_toml(), "saved", &[]).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn bad_fields_are_named() {
        let err = Recipe::from_toml("[optim]\nlrr = 1\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("r.toml") && err.contains("lrr"), "{err}");
        let err = Recipe::from_toml("", "r.toml", &sets(&["optim.lr=-1"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("optim.lr"), "{err}");
        let err = Recipe::from_toml("[model]\narch = \"vgg\"\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("vgg"), "{err}");
        assert!(Recipe::from_toml("", "r", &sets(&["novalue"])).is_err());
        for (override_, field) in [
            ("optim.label_smoothing=1.0", "optim.label_smoothing"),
            ("schedule.warmup_epochs=-1.0", "schedule.warmup_epochs"),
        ] {
            let err = Recipe::from_toml("", "r.toml", &sets(&[override_]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{err}");
        }
        let cosine = Recipe::from_toml(
            "[schedule]\npolicy = \"cosine\"\nwarmup_epochs = 0.5\n",
            "r.toml",
            &[],
        )
        .unwrap();
        assert_eq!(cosine.schedule.policy, LrPolicy::Cosine);
        assert_eq!(cosine.schedule.warmup_epochs, 0.5);
    }

    #[test]
    fn an_error_names_the_field_and_the_flag_that_set_it() {
        // A wrong type: the field's TOML path, in the recipe file.
        let err = Recipe::from_toml("[model]\narch = 5\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("recipe r.toml: model.arch: "), "{err}");
        // A flag's value: the flag as typed, not the recipe file.
        let model = Override::flag("--model resnet50".into(), "model.arch=\"resnet50\"".into());
        let err = Recipe::from_toml("", "r.toml", &[model])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--model resnet50: model.arch: "), "{err}");
        assert!(err.contains("resnet50") && !err.contains("r.toml"), "{err}");
        let batch = Override::flag("--batch-size 0".into(), "optim.batch_size=0".into());
        let err = Recipe::from_toml("", "r.toml", &[batch])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--batch-size 0: optim.batch_size must be in 1..=65536, got 0"
        );
        // The same out-of-range value in the file blames the file.
        let err = Recipe::from_toml("[optim]\nbatch_size = 0\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("recipe r.toml: optim.batch_size"), "{err}");
    }

    #[test]
    fn every_numeric_field_has_a_range() {
        for (assignment, field) in [
            ("data.resize=100000", "data.resize"),
            ("data.resize=0", "data.resize"),
            ("data.prefetch=0", "data.prefetch"),
            ("data.shuffle_window=0", "data.shuffle_window"),
            ("data.pca_sigma=nan", "data.pca_sigma"),
            ("optim.batch_size=100000", "optim.batch_size"),
            ("optim.lr=inf", "optim.lr"),
            ("optim.momentum=1.0", "optim.momentum"),
            ("optim.weight_decay=-0.1", "optim.weight_decay"),
            ("schedule.factor=1.0", "schedule.factor"),
            ("schedule.min_delta=-1.0", "schedule.min_delta"),
            ("schedule.max_drops=1000", "schedule.max_drops"),
            ("schedule.patience=100000", "schedule.patience"),
            ("schedule.step_epochs=0", "schedule.step_epochs"),
            ("run.epochs=0", "run.epochs"),
            ("run.validate_every=0", "run.validate_every"),
            ("model.num_classes=1", "model.num_classes"),
            ("model.num_classes=10000000", "model.num_classes"),
            ("model.dropout=1.0", "model.dropout"),
            ("model.towers=3", "model.towers"),
            ("model.weight_std=0.0", "model.weight_std"),
            ("model.bias_one=inf", "model.bias_one"),
            ("model.lrn_params.size=4", "model.lrn_params.size"),
            ("model.lrn_params.k=0.0", "model.lrn_params.k"),
            ("model.lrn_params.alpha=-1.0", "model.lrn_params.alpha"),
            ("model.lrn_params.beta=nan", "model.lrn_params.beta"),
            ("model.input_size=8", "model.input_size"),
            ("model.input_size=4000", "model.input_size"),
        ] {
            let err = Recipe::from_toml("", "r.toml", &sets(&[assignment])).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("--set {assignment}: ")) && text.contains(field),
                "{assignment}: {text}"
            );
        }
        // The plateau rule needs every epoch's validation error; other policies do not.
        let err = Recipe::from_toml("", "r.toml", &sets(&["run.validate_every=3"])).unwrap_err();
        assert!(err.to_string().contains("plateau"), "{err}");
        let cosine = sets(&["run.validate_every=3", "schedule.policy=\"cosine\""]);
        assert_eq!(
            Recipe::from_toml("", "r.toml", &cosine)
                .unwrap()
                .run
                .validate_every,
            3
        );
        // Every recipe the project ships is within its ranges.
        let recipes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
        for entry in std::fs::read_dir(recipes).unwrap() {
            let path = entry.unwrap().path();
            match Recipe::load(Some(&path), &[]) {
                Ok(_) => {}
                // A bf16 recipe is refused on a CPU without the instructions, and only there.
                Err(e)
                    if !alexnet_model::bf16_gemm::available() && e.to_string().contains("bf16") =>
                {
                    eprintln!("skipped {}: {e}", path.display())
                }
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
}
