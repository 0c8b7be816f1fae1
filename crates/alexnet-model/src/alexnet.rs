//! The network, Section 3 of the paper: "eight learned layers: five convolutional and three
//! fully-connected", the last one feeding a softmax.
//!
//! Each variant is first written down as a table of layers ([`layer_table`]), which reads like the
//! paper's Figure 2, then built into one [`AlexNet`] module whose `forward` runs the table.
//!
//! Shapes (B = batch): input `[B, 3, S, S]` of mean-subtracted pixels; output `[B, classes]` logits.
//!
//! The paper's layer sizes only work out with 227x227 inputs; like torchvision we feed 224x224 crops
//! (Section 4.1) with a padding of 2 in conv1, which gives the paper's 55x55x96 conv1 output.

use burn::backend::Dispatch;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::config::{Activation, Arch, Init, ModelConfig, ModelError, Precision};
use crate::conv_op::{ConvBackend, ConvParams};
use crate::layers::{Activations, Layer};
use crate::lrn::LocalResponseNorm;
use crate::pool_op::{PoolBackend, PoolWindow};
use crate::tanh_op::TanhBackend;
use crate::towers::TowerSplit;

/// One convolutional layer of the table, with what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvLayer {
    pub name: &'static str,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// 2 where each tower sees only its own half of the previous maps (Section 3.2).
    pub groups: usize,
    /// Response normalization after the non-linearity (Section 3.3).
    pub lrn: bool,
    /// Max pooling (window, stride) after that (Section 3.4).
    pub pool: Option<(usize, usize)>,
    /// Section 5: bias initialised to `bias_one` rather than 0.
    pub bias_one: bool,
    /// Spatial side of the input and of the output after pooling.
    pub input_side: usize,
    pub output_side: usize,
}

/// One fully connected layer of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct FcLayer {
    pub name: &'static str,
    pub inputs: usize,
    pub outputs: usize,
    /// Hidden layers: non-linearity, then dropout (Section 4.2). The last layer feeds the softmax.
    pub hidden: bool,
    pub bias_one: bool,
}

/// The layers of a configured network, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTable {
    pub convs: Vec<ConvLayer>,
    pub fcs: Vec<FcLayer>,
}

impl LayerTable {
    /// Weights and biases of every layer.
    pub fn parameter_count(&self) -> usize {
        let convs = self.convs.iter().map(|c| {
            c.out_channels * (c.in_channels / c.groups) * c.kernel * c.kernel + c.out_channels
        });
        let fcs = self.fcs.iter().map(|f| f.inputs * f.outputs + f.outputs);
        convs.chain(fcs).sum()
    }
}

/// (name, kernels, kernel size, stride, padding, tower-split, LRN, pool, bias 1)
type ConvRow = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    bool,
    bool,
    bool,
    bool,
);

/// Section 3.5 and Figure 2: the paper's network.
const PAPER: [ConvRow; 5] = [
    ("conv1", 96, 11, 4, 2, false, true, true, false),
    ("conv2", 256, 5, 1, 2, true, true, true, true),
    // conv3 takes all conv2 maps: the towers talk here (Section 3.2).
    ("conv3", 384, 3, 1, 1, false, false, false, false),
    ("conv4", 384, 3, 1, 1, true, false, false, true),
    ("conv5", 256, 3, 1, 1, true, false, true, true),
];
const PAPER_FC: [usize; 2] = [4096, 4096];

/// Krizhevsky (2014), "One weird trick": one tower, 64-192-384-256-256 (torchvision's layout).
const ONE_WEIRD_TRICK: [ConvRow; 5] = [
    ("conv1", 64, 11, 4, 2, false, true, true, false),
    ("conv2", 192, 5, 1, 2, true, true, true, true),
    ("conv3", 384, 3, 1, 1, false, false, false, false),
    ("conv4", 256, 3, 1, 1, true, false, false, true),
    ("conv5", 256, 3, 1, 1, true, false, true, true),
];

/// cuda-convnet's CIFAR-10 net (layers-18pct): 3 conv 5x5 layers of 32-32-64 maps, LRN after the
/// first two, each followed by 3/2 pooling; one hidden FC layer of 64 before the classifier.
const CIFAR: [ConvRow; 3] = [
    ("conv1", 32, 5, 1, 2, false, true, true, false),
    ("conv2", 32, 5, 1, 2, true, true, true, true),
    ("conv3", 64, 5, 1, 2, false, false, true, false),
];
const CIFAR_FC: [usize; 1] = [64];

const FC_NAMES: [&str; 3] = ["fc6", "fc7", "fc8"];

/// Side after a convolution or pooling window, `None` when the window does not fit.
fn side_after(side: usize, window: usize, stride: usize, padding: usize) -> Option<usize> {
    (side + 2 * padding)
        .checked_sub(window)
        .map(|span| span / stride + 1)
}

/// Writes down the layers of `config`'s variant with its switches applied.
pub fn layer_table(config: &ModelConfig) -> Result<LayerTable, ModelError> {
    let (rows, hidden_widths): (&[ConvRow], &[usize]) = match config.arch {
        Arch::Alexnet => (&PAPER, &PAPER_FC),
        Arch::AlexnetOwt => (&ONE_WEIRD_TRICK, &PAPER_FC),
        Arch::AlexnetCifar => (&CIFAR, &CIFAR_FC),
    };
    let (pool_window, pool_stride) = config.pooling().window_and_stride();
    let too_small = |layer: &str| ModelError::InputTooSmall {
        size: config.input_size(),
        arch: config.arch.to_string(),
        layer: layer.to_string(),
    };

    let mut side = config.input_size();
    let mut channels = 3;
    let mut convs = Vec::new();
    let last = rows.len() - 1;
    for (index, &(name, kernels, kernel, stride, padding, split, lrn, pool, bias_one)) in
        rows.iter().enumerate()
    {
        // Section 3.2's one-tower net: fewer kernels everywhere but the last conv layer, so the
        // fully connected layers see the same inputs. A multiple of the towers, so both halves
        // stay equal.
        let towers = config.towers();
        let out_channels = if index == last {
            kernels
        } else {
            let scaled = (kernels as f64 * config.width / towers as f64).round() as usize;
            scaled.max(1) * towers
        };
        let input_side = side;
        side = side_after(side, kernel, stride, padding).ok_or_else(|| too_small(name))?;
        if pool {
            side = side_after(side, pool_window, pool_stride, 0).ok_or_else(|| too_small(name))?;
        }
        convs.push(ConvLayer {
            name,
            in_channels: channels,
            out_channels,
            kernel,
            stride,
            padding,
            groups: if split { config.towers() } else { 1 },
            lrn: lrn && config.uses_lrn(),
            pool: pool.then_some((pool_window, pool_stride)),
            bias_one,
            input_side,
            output_side: side,
        });
        channels = out_channels;
    }

    let mut inputs = channels * side * side;
    let mut fcs = Vec::new();
    for (index, &outputs) in hidden_widths.iter().enumerate() {
        fcs.push(FcLayer {
            name: FC_NAMES[index + FC_NAMES.len() - 1 - hidden_widths.len()],
            inputs,
            outputs,
            hidden: true,
            bias_one: true,
        });
        inputs = outputs;
    }
    fcs.push(FcLayer {
        name: "fc8",
        inputs,
        outputs: config.num_classes,
        hidden: false,
        bias_one: false,
    });
    Ok(LayerTable { convs, fcs })
}

/// A convolution with its non-linearity, optional response normalization and optional pooling.
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv: Conv2d,
    pub lrn: Option<LocalResponseNorm>,
    pub pool: Option<MaxPool2d>,
    /// `model.precision = "bf16"`: the convolution's products in bf16 (on flex).
    #[module(skip)]
    pub bf16: bool,
    /// `model.winograd`: 3x3 stride-1 convolutions by Winograd's minimal filtering (on flex).
    #[module(skip)]
    pub winograd: bool,
}

impl ConvBlock {
    /// The convolution. On flex it is `conv_op.rs`'s (im2col and matrix products, with a weight
    /// gradient about twice as fast as Burn's generic one); elsewhere it is Burn's `Conv2d`.
    /// Either way the parameters are `conv.weight` and `conv.bias`.
    pub fn convolve(&self, x: Tensor<4>) -> Tensor<4> {
        let conv = &self.conv;
        let weight = conv.weight.val();
        let on_flex = weight.device().inner() == Device::flex();
        if let (true, Some(bias), PaddingConfig2d::Explicit(top, left, bottom, right)) =
            (on_flex, &conv.bias, &conv.padding)
            && top == bottom
            && left == right
            && conv.dilation == [1, 1]
        {
            return Tensor::from_dispatch(<Dispatch as ConvBackend>::convolution(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.val().into_dispatch(),
                ConvParams {
                    stride: conv.stride,
                    padding: [*top, *left],
                    groups: conv.groups,
                    bf16: self.bf16,
                    winograd: self.winograd,
                },
            ));
        }
        conv.forward(x)
    }

    /// The block's overlapping max pooling (Section 3.4), if it has one. On flex it is
    /// `pool_op.rs`'s; elsewhere Burn's `MaxPool2d`.
    pub fn max_pool(&self, x: Tensor<4>) -> Tensor<4> {
        let Some(pool) = &self.pool else {
            return x;
        };
        if x.device().inner() == Device::flex()
            && matches!(pool.padding, PaddingConfig2d::Valid)
            && pool.dilation == [1, 1]
            && !pool.ceil_mode
        {
            let (output, _) = <Dispatch as PoolBackend>::max_pool_saving(
                x.into_dispatch(),
                PoolWindow {
                    size: pool.kernel_size,
                    stride: pool.stride,
                },
            );
            return Tensor::from_dispatch(output);
        }
        pool.forward(x)
    }
}

/// A fully connected layer; `dropout` is present on hidden layers only.
#[derive(Module, Debug)]
pub struct FcBlock {
    pub linear: Linear,
    pub dropout: Option<Dropout>,
}

#[derive(Module, Debug)]
pub struct AlexNet {
    pub features: Vec<ConvBlock>,
    pub classifier: Vec<FcBlock>,
    #[module(skip)]
    pub activation: Activation,
    /// One tower of a network split over two processes (`towers.rs`); `None`: the whole network.
    #[module(skip)]
    pub split: Option<TowerSplit>,
}

/// Section 5: "We initialized the weights in each layer from a zero-mean Gaussian distribution with
/// standard deviation 0.01. We initialized the neuron biases in the second, fourth, and fifth
/// convolutional layers, as well as in the fully-connected hidden layers, with the constant 1."
fn bias(outputs: usize, one: bool, config: &ModelConfig, device: &Device) -> Param<Tensor<1>> {
    let value = if one { config.bias_one } else { 0.0 };
    Param::from_tensor(Tensor::full([outputs], value, device))
}

impl AlexNet {
    /// Builds and initialises the network described by `config`.
    pub fn new(config: &ModelConfig, device: &Device) -> Result<Self, ModelError> {
        config.validate()?;
        Ok(Self::from_table(&layer_table(config)?, config, device))
    }

    /// Builds and initialises the layers of `table` (one tower's, for model parallelism), with
    /// `config`'s initialisation, LRN constants, dropout and activation.
    pub fn from_table(table: &LayerTable, config: &ModelConfig, device: &Device) -> Self {
        let weights = match config.init {
            Init::Paper => Initializer::Normal {
                mean: 0.0,
                std: config.weight_std,
            },
            // Burn takes the fan-in of a grouped convolution as its per-group input maps x kernel area.
            Init::Kaiming => Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: false,
            },
        };
        let features = table
            .convs
            .iter()
            .map(|layer| {
                let p = layer.padding;
                let mut conv = Conv2dConfig::new(
                    [layer.in_channels, layer.out_channels],
                    [layer.kernel, layer.kernel],
                )
                .with_stride([layer.stride, layer.stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_groups(layer.groups)
                .with_initializer(weights.clone())
                .init(device);
                conv.bias = Some(bias(layer.out_channels, layer.bias_one, config, device));
                ConvBlock {
                    conv,
                    lrn: layer
                        .lrn
                        .then(|| LocalResponseNorm::new(&config.lrn_params)),
                    pool: layer.pool.map(|(window, stride)| {
                        MaxPool2dConfig::new([window, window])
                            .with_strides([stride, stride])
                            .init()
                    }),
                    bf16: config.precision == Precision::Bf16,
                    winograd: config.winograd,
                }
            })
            .collect();
        let classifier = table
            .fcs
            .iter()
            .map(|layer| {
                let mut linear = LinearConfig::new(layer.inputs, layer.outputs)
                    .with_initializer(weights.clone())
                    .init(device);
                linear.bias = Some(bias(layer.outputs, layer.bias_one, config, device));
                FcBlock {
                    linear,
                    dropout: (layer.hidden && config.dropout > 0.0)
                        .then(|| DropoutConfig::new(config.dropout).init()),
                }
            })
            .collect();
        Self {
            features,
            classifier,
            activation: config.activation,
            split: None,
        }
    }

    /// The non-linearity (Section 3.1): ReLU, or tanh for the Figure 1 comparison.
    pub fn activate<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self.activation {
            Activation::Relu => relu(x),
            // On flex, eight values at a time instead of the C library's scalar tanhf.
            Activation::Tanh => Tensor::from_dispatch(<Dispatch as TanhBackend>::tanh_activation(
                x.into_dispatch(),
            )),
        }
    }

    /// `[B, 3, S, S]` -> `[B, 256, 6, 6]` for the paper's net: conv, non-linearity, LRN, pool.
    pub fn features(&self, images: Tensor<4>) -> Tensor<4> {
        let layers = self.layers();
        let flatten = layers
            .iter()
            .position(|l| matches!(l.layer, Layer::Flatten))
            .expect("a network flattens its maps before the classifier");
        self.run(&layers[..flatten], Activations::Maps(images))
            .into_maps()
    }

    /// `[B, 3, S, S]` -> the last hidden layer `[B, 4096]` (Section 6.1 compares images by it).
    pub fn last_hidden(&self, images: Tensor<4>) -> Tensor<2> {
        let layers = self.layers();
        self.run(&layers[..layers.len() - 1], Activations::Maps(images))
            .into_rows()
    }

    /// `[B, 3, S, S]` -> logits `[B, classes]` (the softmax is in the loss and in evaluation):
    /// every layer of [`AlexNet::layers`] in turn.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.run(&self.layers(), Activations::Maps(images))
            .into_rows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pooling;
    use crate::linear_op::fully_connected;

    fn params(arch: Arch, classes: usize) -> usize {
        AlexNet::new(&ModelConfig::new(arch, classes), &Device::flex())
            .unwrap()
            .num_params()
    }

    #[test]
    fn parameter_counts_of_the_three_variants() {
        // Caffe's bvlc_alexnet (two towers): 60,965,224; torchvision's alexnet: 61,100,840.
        assert_eq!(params(Arch::Alexnet, 1000), 60_965_224);
        let table = layer_table(&ModelConfig::new(Arch::Alexnet, 1000)).unwrap();
        assert_eq!(table.parameter_count(), 60_965_224);
        assert_eq!(params(Arch::AlexnetOwt, 1000), 61_100_840);
        // conv 3*32*25+32, 32*32*25+32, 32*64*25+64; fc 576*64+64, 64*10+10.
        assert_eq!(
            params(Arch::AlexnetCifar, 10),
            2432 + 25632 + 51264 + 36928 + 650
        );
    }

    #[test]
    fn one_tower_has_more_conv_weights_than_two() {
        let mut config = ModelConfig::new(Arch::Alexnet, 1000);
        config.towers = Some(1);
        let one = AlexNet::new(&config, &Device::flex()).unwrap().num_params();
        // Ungrouping doubles the weights of conv2, conv4 and conv5.
        assert_eq!(
            one - 60_965_224,
            256 * 48 * 25 + 384 * 192 * 9 + 256 * 192 * 9
        );
    }

    #[test]
    fn paper_shapes_through_the_network() {
        let table = layer_table(&ModelConfig::default()).unwrap();
        let sides: Vec<usize> = table.convs.iter().map(|c| c.output_side).collect();
        // Figure 2: 55 -> pool 27, 27 -> pool 13, 13, 13, 13 -> pool 6.
        assert_eq!(sides, vec![27, 13, 13, 13, 6]);
        assert_eq!(table.fcs[0].inputs, 256 * 6 * 6);
        let groups: Vec<usize> = table.convs.iter().map(|c| c.groups).collect();
        assert_eq!(groups, vec![1, 2, 1, 2, 2]);

        let device = Device::flex();
        let model = AlexNet::new(&ModelConfig::new(Arch::Alexnet, 7), &device).unwrap();
        let logits = model.forward(Tensor::zeros([2, 3, 224, 224], &device));
        assert_eq!(logits.dims(), [2, 7]);
    }

    #[test]
    fn the_layer_list_reads_like_figure_2_and_is_the_forward_pass() {
        let device = Device::flex();
        let model = AlexNet::new(&ModelConfig::new(Arch::Alexnet, 7), &device).unwrap();
        let names: Vec<String> = model.layers().into_iter().map(|l| l.name).collect();
        assert_eq!(
            names.join(" "),
            "conv1 relu1 norm1 pool1 conv2 relu2 norm2 pool2 conv3 relu3 conv4 relu4 conv5 relu5 \
             pool5 flatten fc6 relu6 drop6 fc7 relu7 drop7 fc8"
        );
        let cifar = AlexNet::new(&ModelConfig::new(Arch::AlexnetCifar, 10), &device).unwrap();
        let names: Vec<String> = cifar.layers().into_iter().map(|l| l.name).collect();
        assert_eq!(
            names[names.len() - 5..],
            ["flatten", "fc7", "relu7", "drop7", "fc8"]
        );

        // The forward pass written out by hand, block by block, in evaluation mode.
        let model = cifar.valid();
        let images =
            Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Default, &device);
        let mut x = images.clone();
        for block in &model.features {
            x = relu(block.convolve(x));
            if let Some(lrn) = &block.lrn {
                x = lrn.forward(x);
            }
            x = block.max_pool(x);
        }
        // In evaluation mode on flex the layers' products are `linear_op.rs`'s.
        let hidden: Tensor<2> = relu(fully_connected(
            &model.classifier[0].linear,
            x.flatten(1, 3),
        ));
        let logits = fully_connected(&model.classifier[1].linear, hidden.clone());
        let by_hand = logits.into_data().try_to_vec::<f32>().unwrap();
        let forward = model
            .forward(images.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(forward, by_hand);
        let last_hidden = model
            .last_hidden(images)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(last_hidden, hidden.into_data().try_to_vec::<f32>().unwrap());
    }

    #[test]
    fn non_overlapping_pooling_keeps_the_sizes() {
        let config = ModelConfig {
            pooling: Some(Pooling::NonOverlapping),
            ..ModelConfig::default()
        };
        let table = layer_table(&config).unwrap();
        assert_eq!(table.convs[0].pool, Some((2, 2)));
        assert_eq!(table.fcs[0].inputs, 256 * 6 * 6);
    }

    #[test]
    fn lrn_and_activation_switches_change_the_network() {
        let device = Device::flex();
        let paper = AlexNet::new(&ModelConfig::default(), &device).unwrap();
        let with_lrn: Vec<bool> = paper.features.iter().map(|b| b.lrn.is_some()).collect();
        assert_eq!(with_lrn, vec![true, true, false, false, false]);
        let owt = AlexNet::new(&ModelConfig::new(Arch::AlexnetOwt, 10), &device).unwrap();
        assert!(owt.features.iter().all(|b| b.lrn.is_none()));
        let no_lrn = ModelConfig {
            lrn: Some(false),
            ..ModelConfig::default()
        };
        assert!(layer_table(&no_lrn).unwrap().convs.iter().all(|c| !c.lrn));

        // tanh bounds every hidden activation in (-1, 1); ReLU's are unbounded above.
        let tanh = ModelConfig {
            activation: Activation::Tanh,
            ..ModelConfig::new(Arch::AlexnetCifar, 10)
        };
        let model = AlexNet::new(&tanh, &device).unwrap();
        let images = Tensor::<4>::full([1, 3, 32, 32], 100.0, &device);
        let hidden = model
            .last_hidden(images.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(hidden.iter().all(|v| v.abs() < 1.0));
        let relu = AlexNet::new(&ModelConfig::new(Arch::AlexnetCifar, 10), &device).unwrap();
        let hidden = relu
            .last_hidden(images)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(hidden.iter().all(|&v| v >= 0.0) && hidden.iter().any(|&v| v > 1.0));
    }

    #[test]
    fn initialization_follows_section_5() {
        let device = Device::flex();
        let model = AlexNet::new(&ModelConfig::default(), &device).unwrap();
        let bias_of = |b: &Option<Param<Tensor<1>>>| -> Vec<f32> {
            b.as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let conv_biases: Vec<f32> = model
            .features
            .iter()
            .map(|b| bias_of(&b.conv.bias)[0])
            .collect();
        assert_eq!(conv_biases, vec![0.0, 1.0, 0.0, 1.0, 1.0]);
        let fc_biases: Vec<f32> = model
            .classifier
            .iter()
            .map(|b| bias_of(&b.linear.bias)[0])
            .collect();
        assert_eq!(fc_biases, vec![1.0, 1.0, 0.0]);
        // fc6's 37.7M weights: mean 0, standard deviation 0.01.
        let w = model.classifier[0]
            .linear
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 1e-5, "mean {mean}");
        assert!((std - 0.01).abs() < 1e-4, "std {std}");

        let caffe = ModelConfig {
            bias_one: 0.1,
            ..ModelConfig::default()
        };
        let model = AlexNet::new(&caffe, &device).unwrap();
        assert!((bias_of(&model.features[1].conv.bias)[0] - 0.1).abs() < 1e-7);
    }

    #[test]
    fn kaiming_init_scales_each_layer_by_its_fan_in() {
        let config = ModelConfig {
            init: Init::Kaiming,
            ..ModelConfig::new(Arch::AlexnetCifar, 10)
        };
        let model = AlexNet::new(&config, &Device::flex()).unwrap();
        let std_of = |w: Vec<f32>| {
            let n = w.len() as f64;
            (w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n).sqrt()
        };
        // conv2 (fan-in 32 x 5 x 5 = 800) and fc6 (576): sqrt(2 / fan-in), within 5% (25,600
        // and 36,864 draws: the standard error of the estimate is under 1%).
        let conv2 = std_of(
            model.features[1]
                .conv
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        let fc6 = std_of(
            model.classifier[0]
                .linear
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        for (got, fan_in) in [(conv2, 800.0), (fc6, 576.0)] {
            let want = (2.0f64 / fan_in).sqrt();
            assert!((got / want - 1.0).abs() < 0.05, "std {got}, want {want}");
        }
    }

    #[test]
    fn width_scales_every_conv_layer_but_the_last() {
        let widths = |arch, towers, width| {
            let config = ModelConfig {
                towers: Some(towers),
                width,
                ..ModelConfig::new(arch, 10)
            };
            let table = layer_table(&config).unwrap();
            table
                .convs
                .iter()
                .map(|c| c.out_channels)
                .collect::<Vec<_>>()
        };
        // Section 3.2: the one-tower net has half the kernels, the same in the last conv layer.
        assert_eq!(widths(Arch::Alexnet, 1, 0.5), vec![48, 128, 192, 192, 256]);
        assert_eq!(widths(Arch::AlexnetCifar, 1, 0.5), vec![16, 16, 64]);
        assert_eq!(widths(Arch::Alexnet, 2, 1.0), vec![96, 256, 384, 384, 256]);
        // A multiple of the towers, so both halves are equal: 32 * 0.3 = 9.6 -> 10.
        assert_eq!(widths(Arch::AlexnetCifar, 2, 0.3), vec![10, 10, 64]);
        let wide = ModelConfig {
            width: 0.0,
            ..ModelConfig::default()
        };
        assert_eq!(wide.validate(), Err(ModelError::Width(0.0)));
    }

    #[test]
    fn bad_switches_are_refused_with_the_field_name() {
        let mut config = ModelConfig {
            dropout: 1.0,
            ..ModelConfig::default()
        };
        assert_eq!(config.validate(), Err(ModelError::Dropout(1.0)));
        config.dropout = 0.5;
        config.towers = Some(3);
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("model.towers")
        );
        config.towers = None;
        config.input_size = Some(40);
        assert!(matches!(
            config.validate(),
            Err(ModelError::InputTooSmall { .. })
        ));
        config.input_size = None;
        config.lrn_params.size = 4;
        assert_eq!(config.validate(), Err(ModelError::LrnSize(4)));
        assert!("vgg".parse::<Arch>().is_err());
    }
}
