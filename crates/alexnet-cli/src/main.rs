//! `alexnet`: train, evaluate and use the network of Krizhevsky, Sutskever & Hinton (2012).
//!
//! Each subcommand lives in its own file; this file only parses and dispatches. Errors are printed
//! on one line (`error: ...`) with a non-zero exit code.

mod allocator;
mod baseline;
mod bench;
mod demo;
mod eval;
mod experiment;
mod export;
mod import;
mod info;
mod neighbours;
mod predict;
mod prepare;
mod report;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alexnet",
    version,
    about = "AlexNet (Krizhevsky, Sutskever & Hinton, 2012) in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's layers: output shapes, parameters and multiply-adds per image.
    Info(info::InfoArgs),
    /// Pack a data set (image folder, ILSVRC-2012, CIFAR, IDX) into shards with its mean image and PCA.
    Prepare(prepare::PrepareArgs),
    /// Train a network with the paper's recipe (or a recipe file and overrides).
    Train(train::TrainArgs),
    /// Top-1 / top-5 error of one checkpoint or an ensemble, centre crop or 10-crop.
    Eval(eval::EvalArgs),
    /// The five most probable labels of each image.
    Predict(predict::PredictArgs),
    /// One HTML page of what a run learned: curves, confusion matrix, conv1 kernels, predictions, neighbours.
    Report(report::ReportArgs),
    /// The training images nearest to each image in the last hidden layer (Figure 4).
    Neighbours(neighbours::NeighboursArgs),
    /// Check one of the paper's claims: train an experiment's arms over seeds, then its table and plot.
    Experiment(experiment::ExperimentArgs),
    /// Read a PyTorch state dict (torchvision's names; .pth or .safetensors) into a checkpoint.
    Import(import::ImportArgs),
    /// Write a checkpoint's network as a torchvision-named safetensors state dict or an ONNX graph.
    Export(export::ExportArgs),
    /// The classical methods of Table 1 (k-NN, softmax regression, HOG + colour) on a recipe's splits.
    Baseline(baseline::BaselineArgs),
    /// Measure speed: `bench data` (decode and augmentation), `bench model` (training and inference steps).
    Bench(bench::BenchArgs),
    /// Train the small CIFAR model on the images committed in fixtures/, then evaluate and predict.
    Demo(demo::DemoArgs),
}

fn main() {
    allocator::keep_freed_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::run(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Report(args) => report::run(args),
        Command::Neighbours(args) => neighbours::run(args),
        Command::Experiment(args) => experiment::run(args),
        Command::Import(args) => import::run(args),
        Command::Export(args) => export::run(args),
        Command::Baseline(args) => baseline::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
