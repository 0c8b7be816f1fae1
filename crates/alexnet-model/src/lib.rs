//! AlexNet and its family, as Section 3 of Krizhevsky, Sutskever & Hinton (2012) describes it.
//!
//! - [`config`]: the switches the paper's experiments turn (activation, LRN, pooling, dropout, towers).
//! - [`lrn`]: local response normalization, Section 3.3.
//! - [`alexnet`]: the layer tables of the three variants and the network built from them.
//! - [`layers`]: the network as its list of layers, which the forward pass runs in turn.
//! - [`summary`]: layer shapes, parameter counts and multiply-adds (`alexnet info`).
//! - [`towers`]: one tower of the two-tower network, for one of two processes (Section 3.2),
//!   exchanging maps with the other through [`tower_exchange`].
//!
//! On the CPU backend (flex) the heavy layers are our own kernels, added to flex through Burn's
//! backend-extension mechanism, each with its backward pass: [`conv_op`] over [`conv_im2col`],
//! [`lrn_op`] over [`lrn_kernel`], [`pool_op`] over [`pool_kernel`]; [`linear_op`] streams the
//! fully connected layers' weights once for up to 64 images at a time. Other backends
//! run Burn's layers; the parameters and their names are the same either way.

pub mod alexnet;
mod autodiff_op;
pub mod bf16_gemm;
pub mod config;
pub mod conv_im2col;
pub mod conv_op;
pub mod conv_winograd;
mod flex_values;
pub mod layers;
pub mod linear_op;
pub mod lrn;
pub mod lrn_kernel;
pub mod lrn_op;
mod parallel_zeros;
pub mod pool_kernel;
pub mod pool_op;
pub mod summary;
pub mod tanh_op;
#[cfg(test)]
mod test_values;
pub mod tower_exchange;
pub mod towers;
mod vectorized;

pub use alexnet::AlexNet;
pub use config::{Activation, Arch, Init, ModelConfig, ModelError, Pooling, Precision};
pub use layers::{Activations, Layer, NamedLayer};
pub use lrn::LocalResponseNorm;
pub use tower_exchange::TowerLink;
