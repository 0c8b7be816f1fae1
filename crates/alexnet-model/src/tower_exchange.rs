//! The one communication of the paper's two-GPU split (Section 3.2), as a differentiable backend
//! operation: each tower sends some of its maps (dimension 1) to the other, and carries on with
//! its own maps and the ones it received, in tower order (tower 0's first).
//!
//! - Into conv3 and the fully connected layers a tower sends all its maps: both then hold every
//!   map (an all-gather). In the backward pass each tower's gradient of the maps it received goes
//!   back to their owner, who adds it to its own (a reduce-scatter): both towers' next layers
//!   read those maps.
//! - Into the logits a tower sends its half of fc8's outputs, but both towers then compute the
//!   same loss from the same logits, so the gradient stays where it is (`gradient_returns` off).
//! - Before a response normalization a tower sends the few maps at its edge that the other's
//!   window reaches across the boundary (the halo).
//!
//! The values travel through a [`TowerLink`]: MPI between two processes in training
//! (`alexnet-train`), or channels between two threads of one process ([`thread_link_pair`]).
//! The exchange runs on flex (the CPU backend).

use std::fmt::Debug;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::TensorData;

use crate::autodiff_op::differentiable;

/// The line between the two towers.
pub trait TowerLink: Debug + Send + Sync {
    /// Which tower this end holds: 0 or 1.
    fn tower(&self) -> usize;
    /// Sends `mine` to the other tower and returns the `theirs` values it sent at the same time.
    /// Both towers call it in the same order.
    fn swap(&self, mine: &[f32], theirs: usize) -> Vec<f32>;
}

/// The two ends of a link between two threads of one process (a pair of channels): towers
/// trained side by side in one program, one thread each, as the tests do.
pub fn thread_link_pair() -> [Arc<dyn TowerLink>; 2] {
    let (to_second, from_first) = channel();
    let (to_first, from_second) = channel();
    let end = |tower, to_other, from_other| -> Arc<dyn TowerLink> {
        Arc::new(ThreadLink {
            tower,
            to_other: Mutex::new(to_other),
            from_other: Mutex::new(from_other),
        })
    };
    [end(0, to_second, from_second), end(1, to_first, from_first)]
}

/// One end of [`thread_link_pair`].
#[derive(Debug)]
struct ThreadLink {
    tower: usize,
    to_other: Mutex<Sender<Vec<f32>>>,
    from_other: Mutex<Receiver<Vec<f32>>>,
}

impl TowerLink for ThreadLink {
    fn tower(&self) -> usize {
        self.tower
    }

    fn swap(&self, mine: &[f32], theirs: usize) -> Vec<f32> {
        let gone = "the other tower's thread has ended";
        let to_other = self.to_other.lock().unwrap_or_else(|e| e.into_inner());
        to_other.send(mine.to_vec()).expect(gone);
        let from_other = self.from_other.lock().unwrap_or_else(|e| e.into_inner());
        let received = from_other.recv().expect(gone);
        assert_eq!(received.len(), theirs, "tower {} received", self.tower);
        received
    }
}

/// What one exchange sends and receives, along dimension 1 of the tensor.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub link: Arc<dyn TowerLink>,
    /// The maps of this tower that go to the other.
    pub send: Range<usize>,
    /// How many maps come back from it.
    pub receive: usize,
    /// Whether the gradient of the received maps goes back to their owner.
    pub gradient_returns: bool,
}

#[backend_extension(Flex, Autodiff)]
pub trait TowerBackend: Backend {
    /// `[outer, maps, inner...]` -> `[outer, maps + receive, inner...]`: this tower's maps and the
    /// received ones, tower 0's first.
    fn tower_exchange(x: FloatTensor<Self>, exchange: Exchange) -> FloatTensor<Self> {
        let _ = (x, exchange);
        panic!("model parallelism runs on the CPU backend (flex)")
    }

    /// The gradient of this tower's maps from the output's (`maps` of them).
    fn tower_exchange_backward(
        grad: FloatTensor<Self>,
        exchange: Exchange,
        maps: usize,
    ) -> FloatTensor<Self> {
        let _ = (grad, exchange, maps);
        panic!("model parallelism runs on the CPU backend (flex)")
    }
}

/// A tensor's shape as `(outer, maps, inner)`, and the whole of it.
fn split_shape(tensor: &FlexTensor) -> (usize, usize, usize, Vec<usize>) {
    let dims: Vec<usize> = tensor.shape().iter().copied().collect();
    let inner = dims[2..].iter().product();
    (dims[0], dims[1], inner, dims)
}

fn with_maps(mut dims: Vec<usize>, maps: usize) -> Vec<usize> {
    dims[1] = maps;
    dims
}

/// Where this tower's own maps sit among `own + received`.
fn own_offset(exchange: &Exchange) -> usize {
    if exchange.link.tower() == 0 {
        0
    } else {
        exchange.receive
    }
}

/// Maps `range` of every outer row of `[outer, maps, inner]` values, in order.
pub(crate) fn take_maps(
    values: &[f32],
    maps: usize,
    inner: usize,
    range: Range<usize>,
) -> Vec<f32> {
    values
        .chunks_exact(maps * inner)
        .flat_map(|row| &row[range.start * inner..range.end * inner])
        .copied()
        .collect()
}

/// `[outer, a, inner]` and `[outer, b, inner]` values joined along the middle axis:
/// `[outer, a + b, inner]`, each outer row `first`'s then `second`'s.
pub(crate) fn join_maps(first: &[f32], second: &[f32], outer: usize) -> Vec<f32> {
    if outer == 0 {
        return Vec::new();
    }
    let (a, b) = (first.len() / outer, second.len() / outer);
    (0..outer)
        .flat_map(|o| {
            first[o * a..(o + 1) * a]
                .iter()
                .chain(&second[o * b..(o + 1) * b])
        })
        .copied()
        .collect()
}

impl TowerBackend for Flex {
    fn tower_exchange(x: FlexTensor, exchange: Exchange) -> FlexTensor {
        let (outer, maps, inner, dims) = split_shape(&x);
        let x = x.to_contiguous();
        let values = x.as_slice::<f32>().expect("an f32 tensor");
        let sent = take_maps(values, maps, inner, exchange.send.clone());
        let received = exchange.link.swap(&sent, outer * exchange.receive * inner);
        let output = if exchange.link.tower() == 0 {
            join_maps(values, &received, outer)
        } else {
            join_maps(&received, values, outer)
        };
        let dims = with_maps(dims, maps + exchange.receive);
        FlexTensor::from_data(TensorData::new(output, dims))
    }

    fn tower_exchange_backward(grad: FlexTensor, exchange: Exchange, maps: usize) -> FlexTensor {
        let (outer, total, inner, dims) = split_shape(&grad);
        let grad = grad.to_contiguous();
        let values = grad.as_slice::<f32>().expect("an f32 gradient");
        let offset = own_offset(&exchange);
        let mut own = take_maps(values, total, inner, offset..offset + maps);
        if exchange.gradient_returns {
            let received_at = if offset == 0 { maps } else { 0 };
            let of_received = take_maps(
                values,
                total,
                inner,
                received_at..received_at + exchange.receive,
            );
            let sent = exchange.send.clone();
            let back = exchange.link.swap(&of_received, outer * sent.len() * inner);
            // The other tower's gradient of the maps this one sent adds to this one's own.
            let (row, back_row) = (maps * inner, sent.len() * inner);
            for b in 0..outer {
                let target = &mut own[b * row + sent.start * inner..b * row + sent.end * inner];
                for (g, returned) in target.iter_mut().zip(&back[b * back_row..]) {
                    *g += returned;
                }
            }
        }
        FlexTensor::from_data(TensorData::new(own, with_maps(dims, maps)))
    }
}

#[derive(Debug)]
struct ExchangeBackward;

impl<B: Backend + TowerBackend> Backward<B, 1> for ExchangeBackward {
    /// The exchange and how many maps this tower had.
    type State = (Exchange, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (exchange, maps) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::tower_exchange_backward(grad, exchange, maps)
        });
    }
}

impl<B: Backend + TowerBackend, C: CheckpointStrategy> TowerBackend for Autodiff<B, C> {
    fn tower_exchange(x: FloatTensor<Self>, exchange: Exchange) -> FloatTensor<Self> {
        // Kept, never recomputed: a recomputation would be a second exchange on one tower only.
        let saving = |[x]: [FloatTensor<B>; 1]| {
            let maps = x.shape()[1];
            let output = B::tower_exchange(x, exchange.clone());
            (output, (exchange.clone(), maps), ())
        };
        let plain = |[x]: [FloatTensor<B>; 1]| (B::tower_exchange(x, exchange.clone()), ());
        differentiable::<B, C, _, _, 1>(ExchangeBackward, [x], saving, plain).0
    }
}
