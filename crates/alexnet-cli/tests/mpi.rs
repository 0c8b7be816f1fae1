//! Data parallelism on MPI (`--features mpi`): `mpirun -np 2 alexnet train ...` trains the
//! network one process trains, and a rank that dies or fails ends the whole job, never a hang.
//! Model parallelism (`--model-parallel 2`, one tower per rank) trains it too.
//! Needs Open MPI's `mpirun` (`.ci/run` installs it); as root, with its allow-run-as-root switches.
#![cfg(feature = "mpi")]

mod common;
use common::*;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One MPI job at a time: each already puts two ranks on a 2-core machine, and the frozen-rank
/// test's short timeout must not be reached by a rank that is merely starved.
static ONE_JOB_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_job_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_JOB_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `mpirun` with what it needs on a 2-core machine (more ranks than cores) run by root.
fn mpirun() -> Command {
    let mut command = Command::new("mpirun");
    command
        .current_dir(repo_root())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .arg("--oversubscribe");
    command
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_alexnet")
}

fn finished(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn two_mpi_ranks_train_the_same_network_as_one_process() {
    let _serial = one_job_at_a_time();
    let data = fixtures();
    let data = data.to_str().unwrap();
    let dir = temp_dir("mpi-same");
    let alone = dir.join("alone");
    let out = alexnet(&train_args(alone.to_str().unwrap(), data));
    assert!(out.status.success(), "{}", stderr(&out));

    let ranks = dir.join("ranks");
    let out = mpirun()
        .args(["-np", "2", binary()])
        .args(train_args(ranks.to_str().unwrap(), data))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // 500 images, batches of 100 split in halves: rank 1 trained on half of them, and wrote
    // nothing (rank 0 keeps the run).
    assert!(
        stdout(&out).contains("rank 1 of 2 done: 1 epochs, trained on 250 images of 500"),
        "{}",
        stdout(&out)
    );
    assert_same_run(&alone, &ranks);
    // --devices 2 is the same job, started for the user.
    let devices = dir.join("devices");
    let mut args = train_args(devices.to_str().unwrap(), data);
    args.extend(["--devices", "2"]);
    let out = alexnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_run(&alone, &devices);
}

/// The two run directories hold the same weights and velocities (to 1e-5) and the same metrics.
fn assert_same_run(alone: &std::path::Path, other: &std::path::Path) {
    assert_same_state(
        &alone.join("last.safetensors"),
        &other.join("last.safetensors"),
        1e-5,
    );
    let (a_metrics, b_metrics) = (metrics(alone), metrics(other));
    assert_eq!(a_metrics.len(), b_metrics.len());
    for (a, b) in a_metrics.iter().zip(&b_metrics) {
        let loss = |m: &serde_json::Value| m["train_loss"].as_f64().unwrap();
        assert!((loss(a) - loss(b)).abs() < 1e-5, "{a} vs {b}");
        assert_eq!(a["train_top1_error"], b["train_top1_error"]);
        assert_eq!(a["val_top1_error"], b["val_top1_error"]);
    }
}

#[test]
fn two_towers_on_two_ranks_train_the_same_network_as_one_process() {
    let _serial = one_job_at_a_time();
    let data = fixtures();
    let data = data.to_str().unwrap();
    let dir = temp_dir("mpi-towers");
    // alexnet-cifar split into two towers at conv2 (the towers exchange maps into conv3, fc7
    // and fc8, and at the edges of norm1 and norm2).
    let towers = ["--set", "model.towers=2"];
    let alone = dir.join("alone");
    let mut args = train_args(alone.to_str().unwrap(), data);
    args.extend(towers);
    let epochs = args.iter().position(|a| *a == "--epochs").unwrap();
    args[epochs + 1] = "2";
    let out = alexnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));

    // One epoch, then a resume for the second: the towers start from their parts of the whole
    // state rank 0 wrote (weights and velocities).
    let split = dir.join("split");
    let mut args = train_args(split.to_str().unwrap(), data);
    args.extend(towers);
    args.extend(["--devices", "2", "--model-parallel", "2"]);
    let out = alexnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let split_dir = split.to_str().unwrap();
    let out = alexnet(&[
        "train",
        "--resume",
        split_dir,
        "--epochs",
        "2",
        "--quiet",
        "--devices",
        "2",
        "--model-parallel",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Each tower saw every image.
    assert!(
        stdout(&out).contains("rank 1 of 2 done: 2 epochs, trained on 500 images of 500"),
        "{}",
        stdout(&out)
    );
    assert_same_run(&alone, &split);
}

#[test]
fn model_parallelism_refuses_one_tower_and_one_rank() {
    let _serial = one_job_at_a_time();
    let data = fixtures();
    let data = data.to_str().unwrap();
    let dir = temp_dir("mpi-towers-refused");
    let run = dir.join("one-tower");
    let mut args = train_args(run.to_str().unwrap(), data);
    args.extend(["--devices", "2", "--model-parallel", "2"]);
    let out = alexnet(&args);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("model.towers = 2, got 1"),
        "{}",
        stderr(&out)
    );
    let run = dir.join("one-rank");
    let mut args = train_args(run.to_str().unwrap(), data);
    args.extend(["--set", "model.towers=2", "--model-parallel", "2"]);
    let out = alexnet(&args);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("this job has 1"), "{}", stderr(&out));
}

#[test]
fn a_rank_that_fails_ends_the_mpi_job_with_its_error() {
    let _serial = one_job_at_a_time();
    let dir = temp_dir("mpi-fails");
    let run = dir.join("run");
    let missing = dir.join("no-such-data");
    // Two programs in one job (MPMD): rank 1 is pointed at data that is not there.
    let started = Instant::now();
    let out = mpirun()
        .args(["-np", "1", binary()])
        .args(train_args(
            run.to_str().unwrap(),
            fixtures().to_str().unwrap(),
        ))
        .args([":", "-np", "1", binary()])
        .args(train_args(
            dir.join("other").to_str().unwrap(),
            missing.to_str().unwrap(),
        ))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: rank 1 of 2:") && err.contains("no-such-data"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ended after {:?}",
        started.elapsed()
    );
}

/// The pid of the process of rank `rank` whose command line mentions `marker`.
fn rank_pid(rank: usize, marker: &str) -> Option<u32> {
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let command = std::fs::read(entry.path().join("cmdline")).ok()?;
            let environment = std::fs::read(entry.path().join("environ")).ok()?;
            let has = |bytes: &[u8], text: &str| {
                bytes
                    .split(|&b| b == 0)
                    .any(|part| String::from_utf8_lossy(part).contains(text))
            };
            (has(&command, marker) && has(&environment, &wanted)).then_some(pid)
        })
}

/// A 100-epoch job of two ranks into `dir/run`, once its first epoch is on disk, with rank 1's
/// process id; `extra` goes to both ranks.
fn job_past_its_first_epoch(dir: &std::path::Path, extra: &[&str]) -> (Child, u32) {
    let data = fixtures();
    let run = dir.join("run");
    let run_text = run.to_str().unwrap();
    let mut args = train_args(run_text, data.to_str().unwrap());
    let epochs = args.iter().position(|&a| a == "--epochs").unwrap() + 1;
    args[epochs] = "100";
    let job = mpirun()
        .args(["-np", "2", binary()])
        .args(args)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while !run.join("last.safetensors").exists() {
        assert!(waited.elapsed().as_secs() < 120, "no epoch after 2 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    (job, rank_pid(1, run_text).expect("rank 1 is running"))
}

fn signal(name: &str, pid: u32) -> bool {
    Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap()
        .success()
}

#[test]
fn a_killed_rank_ends_the_mpi_job_and_the_last_checkpoint_stays_whole() {
    let _serial = one_job_at_a_time();
    let dir = temp_dir("mpi-killed");
    let (job, rank1) = job_past_its_first_epoch(&dir, &[]);
    let killed = Instant::now();
    assert!(signal("-KILL", rank1));
    let out = finished(job);
    let noticed = killed.elapsed();
    assert!(!out.status.success(), "the job went on without rank 1");
    assert!(noticed < Duration::from_secs(30), "ended after {noticed:?}");
    // The last checkpoint rank 0 wrote is whole.
    let out = alexnet(&["eval", dir.join("run").to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_frozen_rank_ends_the_mpi_job_within_the_peer_timeout() {
    let _serial = one_job_at_a_time();
    let dir = temp_dir("mpi-frozen");
    let (job, rank1) = job_past_its_first_epoch(&dir, &["--peer-timeout", "5"]);
    // Stopped as a hung machine would be: its process and connections are still there.
    let stopped = Instant::now();
    assert!(signal("-STOP", rank1));
    let out = finished(job);
    let noticed = stopped.elapsed();
    signal("-KILL", rank1);
    assert!(!out.status.success(), "the job went on without rank 1");
    let err = stderr(&out);
    assert!(
        err.contains("error: rank 0 of 2: waited 5 s for the other ranks"),
        "{err}"
    );
    assert!(noticed < Duration::from_secs(20), "ended after {noticed:?}");
}

#[test]
fn the_allreduce_benchmark_sums_a_whole_models_gradients_over_the_ranks() {
    let _serial = one_job_at_a_time();
    let out = mpirun()
        .args([
            "-np",
            "2",
            binary(),
            "bench",
            "allreduce",
            "--model",
            "alexnet-cifar",
        ])
        .args(["--classes", "10", "--iterations", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let report: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    // alexnet-cifar with 10 classes: the parameter count `alexnet info` gives.
    let info = stdout(&alexnet(&[
        "info",
        "--model",
        "alexnet-cifar",
        "--classes",
        "10",
    ]));
    let parameters = report["values"].as_u64().unwrap();
    assert!(
        info.contains(&format!("total: {parameters} parameters")),
        "{parameters} values; {info}"
    );
    assert_eq!(report["ranks"], 2);
    assert!(report["median_ms"].as_f64().unwrap() > 0.0);
    // Alone it says what it needs.
    let out = alexnet(&["bench", "allreduce"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at least 2 ranks"),
        "{}",
        stderr(&out)
    );
}
