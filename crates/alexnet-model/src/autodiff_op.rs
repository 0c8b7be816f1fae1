//! The autodiff side of our operations, written once: how `conv_op.rs`, `lrn_op.rs` and
//! `pool_op.rs` join Burn's autodiff graph. A new operation writes its forward pass and its
//! `Backward`; this function does the rest.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

/// Runs an operation with `N` differentiable inputs on the autodiff backend. When the graph
/// tracks an input, `saving` runs the inner backend's forward pass and returns the output, what
/// the backward pass `op` keeps, and anything else the forward returns (`Extra`: pooling's
/// positions); when it tracks none, `plain` runs the forward pass alone. Convolutions and the
/// like are compute-bound: their outputs are kept, not recomputed, under gradient checkpointing.
pub(crate) fn differentiable<B, C, Op, Extra, const N: usize>(
    op: Op,
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    saving: impl FnOnce([FloatTensor<B>; N]) -> (FloatTensor<B>, Op::State, Extra),
    plain: impl FnOnce([FloatTensor<B>; N]) -> (FloatTensor<B>, Extra),
) -> (FloatTensor<Autodiff<B, C>>, Extra)
where
    B: Backend,
    C: CheckpointStrategy,
    Op: Backward<B, N>,
{
    let nodes = inputs.each_ref().map(|input| input.node());
    match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (output, state, extra) = saving(inputs.map(|input| input.primitive().clone()));
            (prep.finish(state, output), extra)
        }
        OpsKind::UnTracked(prep) => {
            let (output, extra) = plain(inputs.map(|input| input.into_primitive()));
            (prep.finish(output), extra)
        }
    }
}
