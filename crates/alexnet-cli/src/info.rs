//! `alexnet info --model NAME`: the layer table, like Figure 2 of the paper.

use alexnet_model::summary::summarize;
use alexnet_model::{Arch, ModelConfig};
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct InfoArgs {
    /// alexnet (the paper's), alexnet-owt (torchvision's single tower) or alexnet-cifar.
    #[arg(long, default_value = "alexnet")]
    model: String,
    /// Width of the last layer.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Side of the input crop (default: 224, or 32 for alexnet-cifar).
    #[arg(long)]
    input_size: Option<usize>,
    /// 1 or 2 towers (default: the model's own).
    #[arg(long)]
    towers: Option<usize>,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let arch: Arch = args.model.parse()?;
    let config = ModelConfig {
        input_size: args.input_size,
        towers: args.towers,
        ..ModelConfig::new(arch, args.classes)
    };
    let summary = summarize(&config)?;
    let side = config.input_size();
    println!(
        "{arch}: input [3, {side}, {side}], {} classes",
        config.num_classes
    );
    println!(
        "{:<6} {:<40} {:>16} {:>12} {:>14}",
        "layer", "what", "output", "params", "mult-adds"
    );
    for layer in &summary.layers {
        let shape = format!("{:?}", layer.output_shape);
        println!(
            "{:<6} {:<40} {:>16} {:>12} {:>14}",
            layer.name, layer.description, shape, layer.params, layer.multiply_adds
        );
    }
    println!(
        "total: {} parameters, {} multiply-adds per image ({:.3} G)",
        summary.params(),
        summary.multiply_adds(),
        summary.multiply_adds() as f64 / 1e9
    );
    Ok(())
}
