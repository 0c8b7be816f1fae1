//! AlexNet and its family, as Section 3 of Krizhevsky, Sutskever & Hinton (2012) describes it.
//!
//! - [`config`]: the switches the paper's experiments turn (activation, LRN, pooling, dropout, towers).
//! - [`lrn`]: local response normalization, Section 3.3.
//! - [`alexnet`]: the layer tables of the three variants and the network built from them.
//! - [`summary`]: layer shapes, parameter counts and multiply-adds (`alexnet info`).

pub mod alexnet;
pub mod config;
pub mod conv_im2col;
pub mod conv_op;
pub mod lrn;
pub mod lrn_op;
pub mod summary;

pub use alexnet::AlexNet;
pub use config::{Activation, Arch, ModelConfig, ModelError, Pooling};
pub use lrn::LocalResponseNorm;
