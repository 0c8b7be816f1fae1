//! `alexnet baseline`: the classical methods of the paper's Table 1 on a recipe's own splits.

use std::path::PathBuf;

use alexnet_baselines::{BaselineOptions, Method, run as run_baseline};
use alexnet_data::progress_bar;
use alexnet_run::Recipe;
use alexnet_run::recipe::Override;
use alexnet_train::run_data::train_and_val_splits;
use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct BaselineArgs {
    /// The recipe whose data section names the splits (the CNN's, so the errors compare).
    #[arg(long)]
    recipe: PathBuf,
    /// Override a recipe field, e.g. `--set data.dir="/data/imagenette"` (as `alexnet train`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// knn-pixels, softmax-pixels, hog-colour, or all (repeatable).
    #[arg(long, default_value = "all")]
    method: Vec<String>,
    /// Side the images are resized to before their features are taken (a multiple of 8).
    #[arg(long, default_value_t = 32)]
    side: usize,
    /// Neighbours that vote (k-NN).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// L2 penalty of the softmax regression.
    #[arg(long, default_value_t = 1.0)]
    alpha: f32,
    /// L-BFGS iterations of the softmax regression.
    #[arg(long, default_value_t = 200)]
    iterations: u64,
    /// Writes the results here as JSON (one object a method).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: BaselineArgs) -> Result<()> {
    let methods: Vec<Method> = if args.method.iter().any(|m| m == "all") {
        Method::ALL.to_vec()
    } else {
        args.method
            .iter()
            .map(|m| {
                m.parse()
                    .map_err(|e: String| anyhow::anyhow!("--method {m}: {e}"))
            })
            .collect::<Result<_>>()?
    };
    let overrides: Vec<Override> = args.overrides.iter().map(|o| Override::set(o)).collect();
    let recipe = Recipe::load(Some(&args.recipe), &overrides)?;
    // The CNN's own splits, read the way training reads them.
    let [train, test] = train_and_val_splits(&recipe, args.quiet)?;
    let options = BaselineOptions {
        side: args.side,
        k: args.k,
        alpha: args.alpha,
        max_iterations: args.iterations,
    };
    let mut results = Vec::new();
    for method in methods {
        let bar = progress_bar(0, args.quiet, method.name());
        let result = run_baseline(method, &options, train.as_ref(), test.as_ref(), &bar)?;
        bar.finish_and_clear();
        println!(
            "{:<15} top-1 error {:.4}  top-5 error {:.4}  ({} features, {:.0} s): {}",
            method.name(),
            result.top1_error,
            result.top5_error,
            result.features,
            result.seconds,
            result.description
        );
        results.push(result);
    }
    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&results)?;
        alexnet_data::write_atomic(out, text.as_bytes())
            .with_context(|| format!("{}: cannot write", out.display()))?;
    }
    Ok(())
}
