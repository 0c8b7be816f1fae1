//! Section 3.2, "Training on Multiple GPUs": the paper's network was too big for one GTX 580's
//! 3 GB, so it "puts half of the kernels (or neurons) on each GPU, with one additional trick: the
//! GPUs communicate only in certain layers. This means that, for example, the kernels of layer 3
//! take input from all kernel maps in layer 2. However, kernels in layer 4 take input only from
//! those kernel maps in layer 3 which reside on the same GPU."
//!
//! One tower of the two-tower network, for one of two processes (`alexnet train
//! --model-parallel 2`): every layer holds its tower's half of the outputs, the grouped
//! convolutions (conv2, conv4, conv5) read only the tower's own maps, and the towers exchange
//! maps ([`crate::tower_exchange`]) where the paper's GPUs talk: into conv3, into fc6, fc7 and fc8
//! (each tower's neurons read both towers' outputs), and into the logits.
//!
//! Where ours differs: the whole network on one process is Caffe's layout (one device, grouped
//! convolutions), whose response normalization (Section 3.3) slides its window of n = 5 maps
//! across the boundary between the towers. So that the split trains the same network, a tower
//! also sends the other the 2 maps at its edge before norm1 and norm2 (2 of conv1's 48 maps and
//! 2 of conv2's 128 per tower), and gets the gradient of those maps back.
//!
//! A tower's parameters are its slice of the whole network's, along each layer's outputs
//! ([`tower_part`]); [`join_towers`] puts the two halves back together for a checkpoint.

use std::ops::Range;
use std::sync::Arc;

use burn::backend::Dispatch;
use burn::tensor::{Device, Tensor};

use crate::alexnet::{AlexNet, LayerTable, layer_table};
use crate::config::{ModelConfig, ModelError};
use crate::lrn::LocalResponseNorm;
use crate::tower_exchange::{Exchange, TowerBackend, TowerLink, join_maps, take_maps};

/// What a tower knows of the other: the link to it and how many outputs its layers have.
#[derive(Debug, Clone)]
pub struct TowerSplit {
    pub link: Arc<dyn TowerLink>,
    /// Per convolutional layer: whether it reads both towers' maps (conv3 of the paper's net).
    pub reads_both: Vec<bool>,
    /// The other tower's outputs of each convolutional layer, then of each fully connected one.
    pub their_maps: Vec<usize>,
    pub their_neurons: Vec<usize>,
}

/// The outputs of a layer of `n` that tower `tower` holds: the first half, or the second.
pub fn tower_range(n: usize, tower: usize) -> Range<usize> {
    let first = n - n / 2;
    if tower == 0 { 0..first } else { first..n }
}

/// The layers of tower `tower` of the two-tower `table`: half of every layer's outputs; a
/// grouped convolution reads the tower's own half of the maps below it, the others all of them
/// (after the exchange).
pub fn tower_table(table: &LayerTable, tower: usize) -> LayerTable {
    let mut convs = table.convs.clone();
    for conv in &mut convs {
        conv.out_channels = tower_range(conv.out_channels, tower).len();
        conv.in_channels /= conv.groups;
        conv.groups = 1;
    }
    let mut fcs = table.fcs.clone();
    for fc in &mut fcs {
        fc.outputs = tower_range(fc.outputs, tower).len();
    }
    LayerTable { convs, fcs }
}

impl AlexNet {
    /// The tower of the two-tower network `config` that `link` says this process holds,
    /// initialised as `config` says (a training run then loads its half of the whole network's
    /// weights into it).
    pub fn tower(
        config: &ModelConfig,
        link: Arc<dyn TowerLink>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if config.towers() != 2 {
            return Err(ModelError::OneTower(config.towers()));
        }
        let table = layer_table(config)?;
        let theirs = tower_table(&table, 1 - link.tower());
        let mut network = Self::from_table(&tower_table(&table, link.tower()), config, device);
        network.split = Some(TowerSplit {
            // conv1 reads the image, which both towers have.
            reads_both: (table.convs.iter().enumerate())
                .map(|(i, conv)| i > 0 && conv.groups == 1)
                .collect(),
            their_maps: theirs.convs.iter().map(|c| c.out_channels).collect(),
            their_neurons: theirs.fcs.iter().map(|f| f.outputs).collect(),
            link,
        });
        Ok(network)
    }
}

impl TowerSplit {
    /// Both towers' maps (or neurons) along dimension 1, tower 0's first: `x` with the other's
    /// `receive` appended (or prepended). With `gradient_returns`, the other tower's gradient of
    /// `x` comes back and adds to this one's.
    pub fn gather<const D: usize>(
        &self,
        x: Tensor<D>,
        receive: usize,
        gradient_returns: bool,
    ) -> Tensor<D> {
        let maps = x.dims()[1];
        self.exchange(x, 0..maps, receive, gradient_returns)
    }

    /// Section 3.3's normalization of this tower's maps, whose windows at the boundary reach
    /// into the other tower's first (or last) maps.
    pub fn normalize(&self, lrn: &LocalResponseNorm, x: Tensor<4>) -> Tensor<4> {
        let (maps, reach) = (x.dims()[1], lrn.reach());
        if reach == 0 {
            return lrn.forward(x);
        }
        let first = self.link.tower() == 0;
        // Tower 0 sends its last maps and appends the other's first; tower 1 the other way.
        let edge = if first { maps - reach..maps } else { 0..reach };
        let extended = self.exchange(x, edge, reach, true);
        let normalized = lrn.forward(extended);
        normalized.narrow(1, if first { 0 } else { reach }, maps)
    }

    fn exchange<const D: usize>(
        &self,
        x: Tensor<D>,
        send: Range<usize>,
        receive: usize,
        gradient_returns: bool,
    ) -> Tensor<D> {
        let exchange = Exchange {
            link: self.link.clone(),
            send,
            receive,
            gradient_returns,
        };
        Tensor::from_dispatch(<Dispatch as TowerBackend>::tower_exchange(
            x.into_dispatch(),
            exchange,
        ))
    }
}

/// The axis along which a parameter of `dims` splits into the towers: its outputs, the rows of
/// a convolution's weight `[out, in, k, k]` and of a bias, the columns of a linear layer's
/// weight (Burn's `[in, out]`).
fn output_axis(dims: &[usize]) -> usize {
    usize::from(dims.len() == 2)
}

/// The shape of tower `tower`'s part of a whole network's parameter of shape `dims`.
pub fn tower_dims(dims: &[usize], tower: usize) -> Vec<usize> {
    let axis = output_axis(dims);
    let mut part = dims.to_vec();
    part[axis] = tower_range(dims[axis], tower).len();
    part
}

/// `dims` as `(outer, the axis, inner)` around the axis a parameter splits along.
fn around_axis(dims: &[usize]) -> (usize, usize, usize) {
    let axis = output_axis(dims);
    (
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
    )
}

/// Tower `tower`'s part of a whole network's parameter: its shape and values.
pub fn tower_part(dims: &[usize], values: &[f32], tower: usize) -> (Vec<usize>, Vec<f32>) {
    let (_, outputs, inner) = around_axis(dims);
    let part = take_maps(values, outputs, inner, tower_range(outputs, tower));
    (tower_dims(dims, tower), part)
}

/// The whole parameter from both towers' parts (tower 0's first): the inverse of
/// [`tower_part`].
pub fn join_towers(
    first: (&[usize], &[f32]),
    second: (&[usize], &[f32]),
) -> (Vec<usize>, Vec<f32>) {
    let axis = output_axis(first.0);
    let (outer, _, _) = around_axis(first.0);
    let mut dims = first.0.to_vec();
    dims[axis] += second.0[axis];
    (dims, join_maps(first.1, second.1, outer))
}
