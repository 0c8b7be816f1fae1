//! `alexnet demo`: the whole system in a minute on two cores. Trains `alexnet-cifar` on the 500
//! CIFAR-10 images committed under `fixtures/cifar10-mini`, evaluates it on the 100 test images
//! (centre crop and 10-crop), predicts the labels of a few of them, and writes the run's report
//! (`runs/demo/report/report.html`).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args)]
pub struct DemoArgs {
    /// The committed images (ImageFolder with train/ and test/).
    #[arg(long, default_value = "fixtures/cifar10-mini")]
    data: PathBuf,
    /// Recipe for the demo run.
    #[arg(long, default_value = "recipes/demo.toml")]
    recipe: PathBuf,
    /// Replaced on each run of the demo.
    #[arg(long, default_value = "runs/demo")]
    run_dir: PathBuf,
}

pub fn run(args: DemoArgs) -> Result<()> {
    if !args.data.is_dir() {
        bail!(
            "{} does not exist: run the demo from the repository root",
            args.data.display()
        );
    }
    // The demo owns its run directory: a previous demo run there is replaced.
    if args.run_dir.join("recipe.toml").exists() {
        std::fs::remove_dir_all(&args.run_dir)?;
    }
    let exe = std::env::current_exe()?;
    let data = args.data.display().to_string();
    let run_dir = args.run_dir.display().to_string();
    let recipe = args.recipe.display().to_string();
    let sample: Vec<String> = ["airplane", "cat", "ship"]
        .iter()
        .filter_map(|class| {
            let dir = args.data.join("test").join(class);
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            files.first().map(|p| p.display().to_string())
        })
        .collect();
    let mut steps: Vec<(&str, Vec<String>)> = vec![
        (
            "train",
            vec![
                "train".into(),
                "--recipe".into(),
                recipe,
                "--data".into(),
                data.clone(),
                "--run-dir".into(),
                run_dir.clone(),
            ],
        ),
        (
            "eval",
            vec![
                "eval".into(),
                run_dir.clone(),
                "--data".into(),
                format!("{data}/test"),
                "--per-class".into(),
            ],
        ),
        (
            "eval 10-crop",
            vec![
                "eval".into(),
                run_dir.clone(),
                "--data".into(),
                format!("{data}/test"),
                "--ten-crop".into(),
            ],
        ),
    ];
    let mut predict = vec!["predict".to_string(), run_dir.clone()];
    predict.extend(sample);
    steps.push(("predict", predict));
    steps.push(("report", vec!["report".into(), run_dir.clone()]));
    for (what, step) in steps {
        println!("\n== alexnet {}", step.join(" "));
        let status = std::process::Command::new(&exe).args(&step).status()?;
        if !status.success() {
            bail!("demo step `{what}` failed");
        }
    }
    Ok(())
}
