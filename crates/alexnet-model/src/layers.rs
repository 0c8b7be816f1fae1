//! The network as the list of layers Figure 2 draws, in order: conv1, relu1, norm1, pool1, ...,
//! fc6, relu6, drop6, fc7, relu7, drop7, fc8. [`AlexNet::forward`] is this list applied in turn,
//! and `alexnet bench model --layers` times the same list one layer at a time, so there is one
//! forward pass, not two.

use burn::nn::{Dropout, Linear};
use burn::tensor::Tensor;

use crate::alexnet::{AlexNet, ConvBlock};
use crate::linear_op::fully_connected;
use crate::lrn::LocalResponseNorm;

/// One layer of the forward pass, borrowed from the network.
#[derive(Debug, Clone, Copy)]
pub enum Layer<'a> {
    /// The convolution of a block (Section 3.5), bias included.
    Conv(&'a ConvBlock),
    /// The non-linearity (Section 3.1): ReLU or tanh.
    Activation,
    /// Local response normalization (Section 3.3).
    Norm(&'a LocalResponseNorm),
    /// The block's max pooling (Section 3.4).
    Pool(&'a ConvBlock),
    /// From the last maps to one row per image, before the first fully connected layer.
    Flatten,
    Linear(&'a Linear),
    /// Section 4.2, on the hidden fully connected layers (the identity in evaluation mode).
    Dropout(&'a Dropout),
    /// One tower of a split network (Section 3.2): both towers' maps or neurons from here on, the
    /// other's `receive` joined to this one's (`towers.rs`).
    Gather {
        receive: usize,
        gradient_returns: bool,
    },
}

/// A layer with the name Caffe and `alexnet info` give it (`conv1`, `relu1`, `norm1`, `fc6`...).
#[derive(Debug, Clone)]
pub struct NamedLayer<'a> {
    pub name: String,
    pub layer: Layer<'a>,
}

/// What flows from layer to layer: maps `[B, C, H, W]` before the classifier, rows `[B, N]` after.
#[derive(Debug, Clone)]
pub enum Activations {
    Maps(Tensor<4>),
    Rows(Tensor<2>),
}

impl Activations {
    /// The rows after the classifier's layers (the logits after the last).
    pub fn into_rows(self) -> Tensor<2> {
        match self {
            Activations::Rows(rows) => rows,
            Activations::Maps(maps) => maps.flatten(1, 3),
        }
    }

    pub fn into_maps(self) -> Tensor<4> {
        match self {
            Activations::Maps(maps) => maps,
            Activations::Rows(_) => panic!("maps asked for after the network's flatten"),
        }
    }

    /// Detached copies outside any graph (a layer's forward pass timed on its own, as in inference).
    pub fn detached(&self) -> Self {
        match self {
            Activations::Maps(x) => Activations::Maps(x.clone().detach()),
            Activations::Rows(x) => Activations::Rows(x.clone().detach()),
        }
    }

    /// Detached copies that ask for their own gradient (a layer timed on its own).
    pub fn detached_with_grad(&self) -> Self {
        match self {
            Activations::Maps(x) => Activations::Maps(x.clone().detach().require_grad()),
            Activations::Rows(x) => Activations::Rows(x.clone().detach().require_grad()),
        }
    }

    /// The sum of every value (what a layer's backward pass is timed on).
    pub fn sum(self) -> Tensor<1> {
        match self {
            Activations::Maps(x) => x.sum(),
            Activations::Rows(x) => x.sum(),
        }
    }
}

impl AlexNet {
    /// Every layer, in the order the forward pass runs them.
    pub fn layers(&self) -> Vec<NamedLayer<'_>> {
        let mut layers = Vec::new();
        let mut push = |name: String, layer| layers.push(NamedLayer { name, layer });
        // A tower gathers both towers' outputs before each layer that reads them all.
        let split = self.split.as_ref();
        let gather = |receive, gradient_returns| Layer::Gather {
            receive,
            gradient_returns,
        };
        for (i, block) in self.features.iter().enumerate() {
            let n = i + 1;
            if let Some(split) = split.filter(|s| s.reads_both[i]) {
                push(format!("gather{n}"), gather(split.their_maps[i - 1], true));
            }
            push(format!("conv{n}"), Layer::Conv(block));
            push(format!("relu{n}"), Layer::Activation);
            if let Some(lrn) = &block.lrn {
                push(format!("norm{n}"), Layer::Norm(lrn));
            }
            if block.pool.is_some() {
                push(format!("pool{n}"), Layer::Pool(block));
            }
        }
        // The classifier's layers end at fc8 whatever their number (fc6..fc8, or fc7..fc8).
        let first_fc = 9 - self.classifier.len();
        if let Some(split) = split {
            let last_conv = split.their_maps.len() - 1;
            push(
                format!("gather{first_fc}"),
                gather(split.their_maps[last_conv], true),
            );
        }
        push("flatten".into(), Layer::Flatten);
        for (j, block) in self.classifier.iter().enumerate() {
            let n = first_fc + j;
            if let Some(split) = split.filter(|_| j > 0) {
                push(
                    format!("gather{n}"),
                    gather(split.their_neurons[j - 1], true),
                );
            }
            push(format!("fc{n}"), Layer::Linear(&block.linear));
            if j + 1 < self.classifier.len() {
                push(format!("relu{n}"), Layer::Activation);
                if let Some(dropout) = &block.dropout {
                    push(format!("drop{n}"), Layer::Dropout(dropout));
                }
            }
        }
        // Both towers compute the same loss from the same logits: the gradient stays put.
        if let Some(split) = split {
            let last_fc = split.their_neurons.len() - 1;
            push("logits".into(), gather(split.their_neurons[last_fc], false));
        }
        layers
    }

    /// Runs one layer.
    pub fn apply(&self, layer: Layer<'_>, x: Activations) -> Activations {
        use Activations::{Maps, Rows};
        match (layer, x) {
            (Layer::Conv(block), Maps(x)) => Maps(block.convolve(x)),
            (Layer::Activation, Maps(x)) => Maps(self.activate(x)),
            (Layer::Activation, Rows(x)) => Rows(self.activate(x)),
            (Layer::Norm(lrn), Maps(x)) => Maps(match &self.split {
                Some(split) => split.normalize(lrn, x),
                None => lrn.forward(x),
            }),
            (Layer::Pool(block), Maps(x)) => Maps(block.max_pool(x)),
            (Layer::Flatten, x) => Rows(x.into_rows()),
            (Layer::Linear(linear), Rows(x)) => Rows(fully_connected(linear, x)),
            (Layer::Dropout(dropout), Rows(x)) => Rows(dropout.forward(x)),
            (
                Layer::Gather {
                    receive,
                    gradient_returns,
                },
                x,
            ) => {
                let split = self.split.as_ref().expect("a gather in a tower's layers");
                match x {
                    Maps(x) => Maps(split.gather(x, receive, gradient_returns)),
                    Rows(x) => Rows(split.gather(x, receive, gradient_returns)),
                }
            }
            (layer, _) => panic!("{layer:?} applied to activations of the wrong rank"),
        }
    }

    /// Runs `layers` in turn on `x`.
    pub fn run(&self, layers: &[NamedLayer<'_>], x: Activations) -> Activations {
        layers.iter().fold(x, |x, named| self.apply(named.layer, x))
    }
}
