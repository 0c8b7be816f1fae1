//! The paper's Table 1 comparison, on our own splits: what a 2011 entry would have done with the
//! same images. ILSVRC-2010's best were sparse coding and SIFT + Fisher vectors; here the classic
//! members of that family, each from a crate made for it:
//!
//! - `knn-pixels`: k nearest neighbours on raw pixels (linfa-nn's exact linear search);
//! - `softmax-pixels`: multinomial logistic (softmax) regression on raw pixels (linfa-logistic);
//! - `hog-colour`: the same linear classifier on hand-made features, histograms of oriented
//!   gradients (imageproc's HOG, Dalal & Triggs 2005) and a joint RGB colour histogram.
//!
//! Every method reads the same prepared splits as the CNN, so the errors compare directly.

pub mod features;
pub mod knn;
pub mod method;
pub mod softmax;

pub use method::{BaselineError, BaselineOptions, BaselineResult, Method, run};
