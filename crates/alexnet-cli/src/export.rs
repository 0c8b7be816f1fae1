//! `alexnet export CKPT --format safetensors|onnx --out FILE`: a checkpoint's network for other
//! tools: a PyTorch state dict under torchvision's names, or an ONNX graph.

use std::path::PathBuf;

use alexnet_data::write_atomic;
use alexnet_interop::{export_state_dict, onnx_model};
use alexnet_run::{Checkpoint, resolve_checkpoint};
use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::import::PreprocessArg;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// A PyTorch state dict (torchvision's names and layouts), for `load_state_dict`.
    Safetensors,
    /// An ONNX graph (opset 17) taking RGB 0..255 crops and giving logits.
    Onnx,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Checkpoint file or run directory.
    checkpoint: PathBuf,
    #[arg(long, value_enum)]
    format: Format,
    #[arg(long)]
    out: PathBuf,
    /// safetensors: what input the written weights expect. `torchvision` unfolds what `import`
    /// folded into conv1 (for a checkpoint imported from torchvision); `none` writes the weights
    /// as they are (they expect pixels minus this checkpoint's mean image).
    #[arg(long, value_enum, default_value = "none")]
    preprocess: PreprocessArg,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let path = resolve_checkpoint(&args.checkpoint);
    let checkpoint = Checkpoint::load(&path)?;
    let what = match args.format {
        Format::Safetensors => {
            let tensors = export_state_dict(&checkpoint, &args.out, args.preprocess.into())?;
            format!("{tensors} tensors under torchvision's names")
        }
        Format::Onnx => {
            let bytes = onnx_model(&checkpoint)?;
            write_atomic(&args.out, &bytes)?;
            format!("an ONNX graph of {:.1} MB", bytes.len() as f64 / 1e6)
        }
    };
    println!(
        "{} ({}) -> {}: {what}",
        path.display(),
        checkpoint.recipe.model.arch,
        args.out.display()
    );
    Ok(())
}
