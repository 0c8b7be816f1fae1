//! `alexnet import FILE --model alexnet-owt --out ckpt.safetensors`: a PyTorch state dict (torchvision's
//! names; `.pth` parsed without running any of its pickle code, or `.safetensors`) as a checkpoint
//! that `eval`, `predict` and `report` use like any other.

use std::path::PathBuf;

use alexnet_interop::{ImportOptions, Preprocess, import_state_dict};
use alexnet_model::Arch;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
pub enum PreprocessArg {
    /// torchvision's normalisation ((x/255 - mean) / std): folded into conv1, exactly.
    Torchvision,
    /// The weights expect ours already (pixels minus the mean image).
    None,
}

impl From<PreprocessArg> for Preprocess {
    fn from(arg: PreprocessArg) -> Self {
        match arg {
            PreprocessArg::Torchvision => Preprocess::Torchvision,
            PreprocessArg::None => Preprocess::None,
        }
    }
}

#[derive(Args)]
pub struct ImportArgs {
    /// The state dict: `.pth` / `.pt` / `.bin` (torch.save) or `.safetensors`.
    file: PathBuf,
    /// The network it holds (torchvision's `alexnet` is alexnet-owt).
    #[arg(long)]
    model: String,
    /// Where the checkpoint goes.
    #[arg(long)]
    out: PathBuf,
    /// What input the weights expect.
    #[arg(long, value_enum, default_value = "torchvision")]
    preprocess: PreprocessArg,
    /// Class names, one per line in label order; the first word of a line is the name (so
    /// ImageNet's `LOC_synset_mapping.txt` works). Default: 0, 1, 2, ...
    #[arg(long)]
    classes: Option<PathBuf>,
}

pub fn run(args: ImportArgs) -> Result<()> {
    let arch: Arch = args
        .model
        .parse()
        .with_context(|| format!("--model {}", args.model))?;
    let class_names = match &args.classes {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--classes {}", path.display()))?
                .lines()
                .filter_map(|line| line.split_whitespace().next().map(str::to_string))
                .collect(),
        ),
        None => None,
    };
    let options = ImportOptions {
        arch,
        preprocess: args.preprocess.into(),
        class_names,
    };
    let checkpoint = import_state_dict(&args.file, &options)?;
    checkpoint.save(&args.out)?;
    println!(
        "{} ({} tensors, {} classes) -> {}: evaluate or predict with it like any checkpoint",
        args.file.display(),
        checkpoint.weights.len(),
        checkpoint.class_names.len(),
        args.out.display()
    );
    Ok(())
}
