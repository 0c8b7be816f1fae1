//! `alexnet experiment NAME [--seeds N] [--out DIR] [--scale small|full] [--data DIR] [--jobs N]`: check one
//! of the paper's claims by training its arms (`experiments/NAME.toml`), then write
//! `OUT/NAME/results.md`, `results.json` and `errors.png`. Given again, it skips finished runs
//! and resumes unfinished ones. `alexnet experiment --list` shows the experiments there are.

use std::path::PathBuf;
use std::time::Instant;

use alexnet_experiment::plot::draw_errors;
use alexnet_experiment::{
    Experiment, PlannedRun, RunStatus, collect, evaluate_arm, evaluate_baselines, execute,
    execute_in_parallel, list, plan, read_baselines, read_evaluations,
};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scale {
    /// Each experiment in about an hour on 2 cores.
    Small,
    /// The longer version, for bigger machines.
    Full,
}

#[derive(Args)]
pub struct ExperimentArgs {
    /// The experiment: a name in --dir (`lrn` is `experiments/lrn.toml`) or a file.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// List the experiments in --dir with their claims.
    #[arg(long)]
    list: bool,
    /// Seeds per arm (default: the scale's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: Option<u64>,
    /// Where the runs and results go: OUT/NAME/<arm>-seed<k>/ and OUT/NAME/results.md.
    #[arg(long, default_value = "runs/experiments")]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "small")]
    scale: Scale,
    /// The data set, instead of the base recipe's data.dir (a prepared directory is read as shards).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where experiment files are looked for.
    #[arg(long, default_value = "experiments")]
    dir: PathBuf,
    /// Only write the results of what has run so far; train nothing.
    #[arg(long)]
    report_only: bool,
    /// Train N runs at a time, each an `alexnet train` process with 1/N of the cores (its output
    /// in OUT/NAME/<arm>-seed<k>.log). Two one-thread runs train 1.29x the images a second of one
    /// two-thread run on 2 cores; a run's wall time is then that of half the machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: ExperimentArgs) -> Result<()> {
    if args.list {
        for experiment in list(&args.dir)? {
            println!(
                "{:<14} {} arms  (Section {}) {}",
                experiment.name,
                experiment.arms.len(),
                experiment.section,
                experiment.claim
            );
        }
        return Ok(());
    }
    let name = args
        .name
        .as_deref()
        .expect("clap requires NAME without --list");
    let path = if name.ends_with(".toml") {
        PathBuf::from(name)
    } else {
        args.dir.join(format!("{name}.toml"))
    };
    if !path.is_file() {
        bail!(
            "no experiment {name:?}: {} is not a file (alexnet experiment --list shows them)",
            path.display()
        );
    }
    let experiment = Experiment::load(&path)?;
    let full = args.scale == Scale::Full;
    let planned = || {
        plan(
            &experiment,
            full,
            args.seeds.map(|s| s as usize),
            &args.out,
            args.data.as_deref(),
        )
    };
    let results_dir = args.out.join(&experiment.name);
    let mut runs = planned();
    // A sweep's winner has its other seeds planned only once the sweep's seed-0 runs are done:
    // train, plan again, and go on while that adds runs.
    if !args.report_only {
        loop {
            execute_all(&runs, &experiment, &args)?;
            let again = planned();
            if again.len() == runs.len() {
                break;
            }
            runs = again;
        }
    }
    let mut evaluations = Vec::new();
    for arm in experiment.arms.iter().filter(|a| a.evaluated()) {
        let found = if args.report_only {
            read_evaluations(&results_dir, arm)
        } else {
            evaluate_arm(arm, &runs, &results_dir, args.quiet)?
        };
        evaluations.push((arm.name.clone(), found));
    }
    let baselines = if args.report_only {
        read_baselines(&experiment, &results_dir)
    } else {
        evaluate_baselines(&experiment, args.data.as_deref(), &results_dir, args.quiet)?
    };
    let results = collect(&experiment, &runs, &evaluations, &baselines);
    std::fs::create_dir_all(&results_dir)
        .with_context(|| format!("creating {}", results_dir.display()))?;
    let plots = vec![draw_errors(&results, &results_dir)?];
    results
        .write(&results_dir, &plots)
        .with_context(|| format!("writing {}", results_dir.display()))?;
    for arm in &results.arms {
        let top1 = arm
            .val_top1_error
            .map_or("-".into(), |s| format!("{:.4} ± {:.4}", s.mean, s.std));
        println!(
            "{:<16} val top-1 error {top1} over {}/{} runs (paper: {})",
            arm.arm,
            arm.finished,
            arm.planned,
            arm.paper.as_deref().unwrap_or("-")
        );
    }
    println!("results: {}", results_dir.join("results.md").display());
    Ok(())
}

/// Trains every run of `runs` not yet finished (`--jobs` at a time), saying what happened to each.
fn execute_all(runs: &[PlannedRun], experiment: &Experiment, args: &ExperimentArgs) -> Result<()> {
    let said = |i: usize, status: &RunStatus, seconds: f64| {
        let run = &runs[i];
        let what = match status {
            RunStatus::Skipped => "skipped: finished".to_string(),
            RunStatus::Resumed(done) => format!("resumed after epoch {done}"),
            RunStatus::Started => "started".to_string(),
            RunStatus::Shared(twin) => format!("the same run as {}", twin.display()),
        };
        println!(
            "[{}/{}] {} seed {}: {what} ({seconds:.0} s) -> {}",
            i + 1,
            runs.len(),
            run.arm,
            run.seed,
            run.dir.display()
        );
    };
    if args.jobs > 1 {
        let program = std::env::current_exe().context("finding the alexnet program")?;
        execute_in_parallel(
            runs,
            &experiment.base,
            &args.out,
            args.jobs as usize,
            &program,
            said,
        )?;
    } else {
        for (i, run) in runs.iter().enumerate() {
            let started = Instant::now();
            let status = execute(run, &experiment.base, &args.out, args.quiet)?;
            said(i, &status, started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
