//! The model's configuration: which member of the family, and the switches of the paper's experiments.
//!
//! Every switch that is `None` takes the chosen variant's own value (the paper's net has LRN and two
//! towers, torchvision's single-tower net has neither), so a recipe names only what it changes.

use serde::{Deserialize, Serialize};

/// The most parameters a network may have: a billion (the paper's has 61 million), so that a
/// recipe or a checkpoint cannot ask for more memory than a machine has (an input of 4096 would
/// give the paper's fc6 17 billion weights).
pub const MAX_PARAMETERS: usize = 1_000_000_000;

/// Errors in a model configuration, each naming the field and the bad value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("unknown model `{0}` (expected one of: alexnet, alexnet-owt, alexnet-cifar)")]
    UnknownModel(String),
    #[error("model.dropout must be in [0, 1), got {0}")]
    Dropout(f64),
    #[error("model.towers must be 1 or 2, got {0}")]
    Towers(usize),
    #[error("model.num_classes must be in 2..=1000000, got {0}")]
    NumClasses(usize),
    #[error("model.input_size {size} is too small for {arch}: layer {layer} would have no output")]
    InputTooSmall {
        size: usize,
        arch: String,
        layer: String,
    },
    #[error(
        "model.lrn_params.size must be odd (a window centred on the map) and at most 255, got {0}"
    )]
    LrnSize(usize),
    #[error("model.lrn_params.{name} must be {range}, got {value}")]
    LrnConstant {
        name: &'static str,
        range: &'static str,
        value: f64,
    },
    #[error("model.input_size must be at most 4096, got {0}")]
    InputTooLarge(usize),
    #[error("model.weight_std must be positive and finite, got {0}")]
    WeightStd(f64),
    #[error("model.width must be in (0, 4], got {0}")]
    Width(f64),
    #[error("model.bias_one must be finite, got {0}")]
    BiasOne(f64),
    #[error(
        "model.input_size {size} gives {arch} {params} parameters, over the limit of \
         {MAX_PARAMETERS} (16 GB of weights, gradients and momentum)"
    )]
    TooLarge {
        size: usize,
        arch: String,
        params: usize,
    },
    #[error("model.precision = \"bf16\" needs a CPU with AVX512-BF16, and this one has none")]
    Bf16Unavailable,
    #[error("model parallelism puts one tower on each process: it needs model.towers = 2, got {0}")]
    OneTower(usize),
}

impl ModelError {
    /// The TOML path of the field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ModelError::UnknownModel(_) => "model.arch",
            ModelError::Dropout(_) => "model.dropout",
            ModelError::Towers(_) | ModelError::OneTower(_) => "model.towers",
            ModelError::NumClasses(_) => "model.num_classes",
            ModelError::InputTooSmall { .. }
            | ModelError::InputTooLarge(_)
            | ModelError::TooLarge { .. } => "model.input_size",
            ModelError::LrnSize(_) => "model.lrn_params.size",
            ModelError::LrnConstant { name, .. } => match *name {
                "k" => "model.lrn_params.k",
                "alpha" => "model.lrn_params.alpha",
                _ => "model.lrn_params.beta",
            },
            ModelError::WeightStd(_) => "model.weight_std",
            ModelError::Width(_) => "model.width",
            ModelError::BiasOne(_) => "model.bias_one",
            ModelError::Bf16Unavailable => "model.precision",
        }
    }
}

/// Which member of the AlexNet family. Read from its name (so that a wrong value says what it
/// got, `invalid type: integer `5`, expected a string`, or lists the names there are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum Arch {
    /// The paper's network (Section 3): 96-256-384-384-256 kernels, LRN, two towers.
    #[serde(rename = "alexnet")]
    Alexnet,
    /// Single tower, "one weird trick" widths 64-192-384-256-256, no LRN (torchvision's `alexnet`).
    #[serde(rename = "alexnet-owt")]
    AlexnetOwt,
    /// A small member for 32x32 images: cuda-convnet's 3-conv CIFAR-10 net (32-32-64 5x5, LRN).
    #[serde(rename = "alexnet-cifar")]
    AlexnetCifar,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::Alexnet, Arch::AlexnetOwt, Arch::AlexnetCifar];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Alexnet => "alexnet",
            Arch::AlexnetOwt => "alexnet-owt",
            Arch::AlexnetCifar => "alexnet-cifar",
        }
    }

    /// Input side the variant is designed for: the paper's 224 crops (Section 4.1), or CIFAR's 32.
    pub fn default_input_size(self) -> usize {
        match self {
            Arch::Alexnet | Arch::AlexnetOwt => 224,
            Arch::AlexnetCifar => 32,
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| ModelError::UnknownModel(s.to_string()))
    }
}

impl TryFrom<String> for Arch {
    type Error = ModelError;
    fn try_from(name: String) -> Result<Self, ModelError> {
        name.parse()
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The non-linearity of every hidden layer (Section 3.1 compares the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
}

/// How the weights start (biases follow `bias_one` either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Section 5: every weight from N(0, `weight_std`^2), whatever the layer's size.
    #[default]
    Paper,
    /// Not in the paper: N(0, 2 / fan-in) (He et al. 2015), which keeps the activations' scale
    /// from layer to layer under ReLUs, so a small net starts learning at once.
    Kaiming,
}

/// Max-pooling geometry (Section 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// z = 3, s = 2: neighbouring windows overlap (the paper's choice).
    Overlapping,
    /// z = 2, s = 2: the traditional, non-overlapping grid.
    NonOverlapping,
}

impl Pooling {
    /// (window z, stride s).
    pub fn window_and_stride(self) -> (usize, usize) {
        match self {
            Pooling::Overlapping => (3, 2),
            Pooling::NonOverlapping => (2, 2),
        }
    }
}

/// Local response normalization constants (Section 3.3), "determined using a validation set".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrnConfig {
    /// n: adjacent kernel maps summed over.
    pub size: usize,
    pub k: f64,
    /// Not divided by n (PyTorch and Burn divide it).
    pub alpha: f64,
    pub beta: f64,
}

impl Default for LrnConfig {
    fn default() -> Self {
        Self {
            size: 5,
            k: 2.0,
            alpha: 1e-4,
            beta: 0.75,
        }
    }
}

/// The number format of the convolutions' matrix products on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout (the paper's, and the default).
    #[default]
    F32,
    /// Operands rounded to bf16, sums in f32 (`bf16_gemm.rs`), on CPUs with AVX512-BF16. Only the
    /// convolutions on flex; everything else stays f32.
    Bf16,
}

/// Everything needed to build a network; saved with each run so eval and predict rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Which member of the family.
    pub arch: Arch,
    /// Width of the last layer (the paper: 1000 ILSVRC classes); set from the data set when training.
    pub num_classes: usize,
    /// Side of the square input crop; `None`: the variant's own (224, or 32 for alexnet-cifar).
    pub input_size: Option<usize>,
    /// Section 3.1: ReLU, or tanh for the Figure 1 comparison.
    pub activation: Activation,
    /// Section 3.3: LRN after the first two conv layers; `None`: the variant's own (on, off for owt).
    pub lrn: Option<bool>,
    pub lrn_params: LrnConfig,
    /// Section 3.4; `None`: overlapping.
    pub pooling: Option<Pooling>,
    /// Section 4.2: dropout probability on the outputs of the hidden fully connected layers.
    pub dropout: f64,
    /// Section 3.2: 2 splits conv2, conv4 and conv5 into two towers (grouped convolution); `None`:
    /// the variant's own (2 for the paper's net, 1 otherwise).
    pub towers: Option<usize>,
    /// Section 5: every weight is drawn from N(0, weight_std^2); the paper's 0.01.
    pub weight_std: f64,
    /// `paper` (N(0, weight_std^2)) or `kaiming`.
    pub init: Init,
    /// Kernels of every convolutional layer but the last, as a share of the variant's (Section
    /// 3.2's one-tower comparison net has half: `width = 0.5`). 1 is the variant itself.
    pub width: f64,
    /// Section 5: the bias of conv2, conv4, conv5, fc6 and fc7 ("1", to give ReLUs positive inputs;
    /// Caffe uses 0.1). Every other bias starts at 0.
    pub bias_one: f64,
    /// Opt-in bf16 products in the convolutions (not in the paper).
    pub precision: Precision,
    /// The 3x3 stride-1 convolutions (conv3-5) by Winograd's F(2x2, 3x3) on flex, forward and
    /// input gradient (`conv_winograd.rs`); `false`: im2col like the others. Not in the paper.
    pub winograd: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Alexnet,
            num_classes: 1000,
            input_size: None,
            activation: Activation::Relu,
            lrn: None,
            lrn_params: LrnConfig::default(),
            pooling: None,
            dropout: 0.5,
            towers: None,
            weight_std: 0.01,
            init: Init::Paper,
            width: 1.0,
            bias_one: 1.0,
            precision: Precision::F32,
            winograd: true,
        }
    }
}

impl ModelConfig {
    pub fn new(arch: Arch, num_classes: usize) -> Self {
        Self {
            arch,
            num_classes,
            ..Self::default()
        }
    }

    pub fn input_size(&self) -> usize {
        self.input_size
            .unwrap_or_else(|| self.arch.default_input_size())
    }

    pub fn uses_lrn(&self) -> bool {
        self.lrn.unwrap_or(self.arch != Arch::AlexnetOwt)
    }

    pub fn towers(&self) -> usize {
        self.towers
            .unwrap_or(if self.arch == Arch::Alexnet { 2 } else { 1 })
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling.unwrap_or(Pooling::Overlapping)
    }

    /// Checks every field; the layer arithmetic is checked when the layer table is built.
    /// The same network with every "the variant's own" choice written out: two configs that
    /// build the same network are equal once resolved.
    pub fn resolved(&self) -> Self {
        Self {
            input_size: Some(self.input_size()),
            lrn: Some(self.uses_lrn()),
            pooling: Some(self.pooling()),
            towers: Some(self.towers()),
            ..self.clone()
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::Dropout(self.dropout));
        }
        if !matches!(self.towers(), 1 | 2) {
            return Err(ModelError::Towers(self.towers()));
        }
        if !(2..=1_000_000).contains(&self.num_classes) {
            return Err(ModelError::NumClasses(self.num_classes));
        }
        let lrn = &self.lrn_params;
        if lrn.size.is_multiple_of(2) || lrn.size > 255 {
            return Err(ModelError::LrnSize(lrn.size));
        }
        // k > 0 keeps the denominator away from 0 where a map is all zeros.
        for (name, value, ok, range) in [
            ("k", lrn.k, lrn.k > 0.0, "positive and finite"),
            ("alpha", lrn.alpha, lrn.alpha >= 0.0, ">= 0 and finite"),
            ("beta", lrn.beta, lrn.beta >= 0.0, ">= 0 and finite"),
        ] {
            if !(ok && value.is_finite()) {
                return Err(ModelError::LrnConstant { name, range, value });
            }
        }
        if self.input_size() > 4096 {
            return Err(ModelError::InputTooLarge(self.input_size()));
        }
        if !(self.weight_std > 0.0 && self.weight_std.is_finite()) {
            return Err(ModelError::WeightStd(self.weight_std));
        }
        if !(self.width > 0.0 && self.width <= 4.0) {
            return Err(ModelError::Width(self.width));
        }
        if !self.bias_one.is_finite() {
            return Err(ModelError::BiasOne(self.bias_one));
        }
        if self.precision == Precision::Bf16 && !crate::bf16_gemm::available() {
            return Err(ModelError::Bf16Unavailable);
        }
        let table = crate::alexnet::layer_table(self)?;
        let params = table.parameter_count();
        if params > MAX_PARAMETERS {
            return Err(ModelError::TooLarge {
                size: self.input_size(),
                arch: self.arch.to_string(),
                params,
            });
        }
        Ok(())
    }
}
