//! `alexnet experiment --jobs N`: N runs at a time, each an `alexnet train` process of its own
//! (the command the results table gives for it) with the machine's cores shared out among them.
//! On a 2-core machine two one-thread runs train more images a second than one two-thread run
//! (alexnet-cifar's layers are too small to split well over threads): two epochs of
//! `recipes/cifar10-normalized.toml` side by side took 144.5 s, against 93.5 s for one alone.
//! Each run's output goes to `OUT/NAME/<arm>-seed<k>.log`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::runner::{NextStep, PlannedRun, RunError, RunStatus, prepare};

/// Where the output of `run`'s process goes.
pub fn log_path(run: &PlannedRun) -> PathBuf {
    // Not `with_extension`: an arm named `relu-lr0.01` would lose `.01-seed0` to it, and two
    // runs would share one log.
    let mut name = run.dir.file_name().unwrap_or_default().to_os_string();
    name.push(".log");
    run.dir.with_file_name(name)
}

struct Running {
    index: usize,
    status: RunStatus,
    child: Child,
    started: Instant,
}

/// Makes every run of `runs`, `jobs` at a time, as processes of `program` (the alexnet
/// binary). `report` hears of each run when it is done: its index, what happened, its seconds.
/// After a failed run no new one starts; those under way are waited for, then the error returns.
pub fn execute_in_parallel(
    runs: &[PlannedRun],
    base: &Path,
    out: &Path,
    jobs: usize,
    program: &Path,
    mut report: impl FnMut(usize, &RunStatus, f64),
) -> Result<(), RunError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs.max(1)).max(1).to_string();
    let mut running: Vec<Running> = Vec::new();
    let mut next = 0;
    let mut failure = None;
    loop {
        while failure.is_none() && running.len() < jobs && next < runs.len() {
            let (index, run) = (next, &runs[next]);
            next += 1;
            let status = match prepare(run, base, out) {
                Ok(NextStep::Done(status)) => {
                    report(index, &status, 0.0);
                    continue;
                }
                Ok(NextStep::Train(status, _)) => status,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            match spawn(run, base, &status, program, &threads) {
                Ok(child) => running.push(Running {
                    index,
                    status,
                    child,
                    started: Instant::now(),
                }),
                Err(error) => failure = Some(error),
            }
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut still = Vec::new();
        for mut job in running {
            let run = &runs[job.index];
            match job.child.try_wait() {
                Ok(None) => still.push(job),
                Ok(Some(exit)) if exit.success() => {
                    report(job.index, &job.status, job.started.elapsed().as_secs_f64());
                }
                Ok(Some(exit)) => {
                    failure.get_or_insert(failed(run, exit.to_string()));
                }
                Err(error) => {
                    failure.get_or_insert(failed(run, error.to_string()));
                }
            }
        }
        running = still;
    }
    failure.map_or(Ok(()), Err)
}

fn spawn(
    run: &PlannedRun,
    base: &Path,
    status: &RunStatus,
    program: &Path,
    threads: &str,
) -> Result<Child, RunError> {
    let log = log_path(run);
    let opened = |what: &str, e: std::io::Error| failed(run, format!("{what}: {e}"));
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| opened("creating its folder", e))?;
    }
    let output = std::fs::File::create(&log).map_err(|e| opened("creating its log", e))?;
    let errors = output
        .try_clone()
        .map_err(|e| opened("opening its log", e))?;
    Command::new(program)
        .args(run.train_arguments(base, *status != RunStatus::Started))
        .arg("--quiet")
        .env("RAYON_NUM_THREADS", threads)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .map_err(|e| opened(&format!("starting {}", program.display()), e))
}

fn failed(run: &PlannedRun, reason: String) -> RunError {
    RunError::Process {
        arm: run.arm.clone(),
        seed: run.seed,
        log: log_path(run),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_started_with_its_overrides_and_resumed_with_its_epochs() {
        let run = PlannedRun {
            arm: "lrn".into(),
            seed: 1,
            dir: PathBuf::from("out/tiny/lrn-seed1"),
            epochs: 3,
            overrides: vec!["model.lrn=true".into(), "run.seed=1".into()],
            stop_at_train_error: Some(0.25),
        };
        let base = Path::new("recipes/demo.toml");
        assert_eq!(
            run.train_arguments(base, false).join(" "),
            "train --recipe recipes/demo.toml --set model.lrn=true --set run.seed=1 \
             --stop-at-train-error 0.25 --run-dir out/tiny/lrn-seed1"
        );
        // The command the results table gives is the same, quoted for a shell.
        assert_eq!(
            run.command(base),
            "alexnet train --recipe recipes/demo.toml --set 'model.lrn=true' --set 'run.seed=1' \
             --stop-at-train-error 0.25 --run-dir out/tiny/lrn-seed1"
        );
        assert_eq!(
            run.train_arguments(base, true).join(" "),
            "train --resume out/tiny/lrn-seed1 --epochs 3 --stop-at-train-error 0.25"
        );
        assert_eq!(log_path(&run), PathBuf::from("out/tiny/lrn-seed1.log"));
        let dotted = PlannedRun {
            dir: "out/tiny/relu-lr0.01-seed0".into(),
            ..run
        };
        assert_eq!(
            log_path(&dotted),
            PathBuf::from("out/tiny/relu-lr0.01-seed0.log")
        );
    }
}
