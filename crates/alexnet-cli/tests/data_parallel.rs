//! Data parallelism: two ranks, each training on half of every batch and combining gradients over
//! loopback TCP, end with the weights one process gets on the whole batches.

mod common;
use common::*;

use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_ranks_train_the_same_network_as_one_process() {
    let data = fixtures();
    let data = data.to_str().unwrap();
    let dir = temp_dir("data-parallel");
    let alone = dir.join("alone");
    let out = alexnet(&train_args(alone.to_str().unwrap(), data));
    assert!(out.status.success(), "{}", stderr(&out));

    // Two processes on loopback, started as on two machines: rank 1 is told only where rank 0
    // is and where its data lies.
    let coordinator = format!("127.0.0.1:{}", free_port());
    let rank1_dir = dir.join("rank1-writes-nothing");
    let rank1 = Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .current_dir(repo_root())
        .args(["train", "--quiet", "--world-size", "2", "--rank", "1"])
        .args(["--coordinator", &coordinator, "--data", data])
        .args(["--run-dir", rank1_dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ranks = dir.join("ranks");
    let mut args = train_args(ranks.to_str().unwrap(), data);
    args.extend([
        "--world-size",
        "2",
        "--rank",
        "0",
        "--coordinator",
        &coordinator,
    ]);
    let rank0 = alexnet(&args);
    let rank1 = rank1.wait_with_output().unwrap();
    assert!(rank0.status.success(), "rank 0: {}", stderr(&rank0));
    assert!(rank1.status.success(), "rank 1: {}", stderr(&rank1));
    // 500 images, batches of 100 split in halves: rank 1 trained on half of them.
    assert!(
        stdout(&rank1).contains("trained on 250 images of 500"),
        "{}",
        stdout(&rank1)
    );
    assert!(!rank1_dir.exists(), "rank 1 wrote a run directory");
    assert_same_state(
        &alone.join("last.safetensors"),
        &ranks.join("last.safetensors"),
        1e-5,
    );
    let (alone_metrics, ranks_metrics) = (metrics(&alone), metrics(&ranks));
    for (a, b) in alone_metrics.iter().zip(&ranks_metrics) {
        let loss = |m: &serde_json::Value| m["train_loss"].as_f64().unwrap();
        assert!((loss(a) - loss(b)).abs() < 1e-5, "{a} vs {b}");
        assert_eq!(a["train_top1_error"], b["train_top1_error"]);
        assert_eq!(a["val_top1_error"], b["val_top1_error"]);
    }

    // The same on one machine with --devices 2.
    let devices = dir.join("devices");
    let mut args = train_args(devices.to_str().unwrap(), data);
    args.extend(["--devices", "2"]);
    let out = alexnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_state(
        &alone.join("last.safetensors"),
        &devices.join("last.safetensors"),
        1e-5,
    );
}

#[test]
fn a_rank_without_its_coordinator_stops_with_a_clear_error() {
    let coordinator = format!("127.0.0.1:{}", free_port());
    let out = alexnet(&[
        "train",
        "--world-size",
        "2",
        "--rank",
        "1",
        "--coordinator",
        &coordinator,
        "--join-timeout",
        "1",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("no coordinator at {coordinator}")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_stopped_rank_ends_the_job_within_the_peer_timeout() {
    let data = fixtures();
    let dir = temp_dir("stopped-rank");
    let coordinator = format!("127.0.0.1:{}", free_port());
    let rank = |rank: &str, run: &str| {
        Command::new(env!("CARGO_BIN_EXE_alexnet"))
            .current_dir(repo_root())
            .args([
                "train",
                "--recipe",
                "recipes/demo.toml",
                "--quiet",
                "--epochs",
                "100",
            ])
            .args(["--data", data.to_str().unwrap(), "--batch-size", "100"])
            .args([
                "--world-size",
                "2",
                "--rank",
                rank,
                "--coordinator",
                &coordinator,
            ])
            .args(["--peer-timeout", "3", "--run-dir", run])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let run = dir.join("run");
    let rank0 = rank("0", run.to_str().unwrap());
    let mut rank1 = rank("1", dir.join("other").to_str().unwrap());
    // Once an epoch is on disk, freeze rank 1 as a hung machine would be: its process is there
    // and its connection open, but it says nothing more.
    let waited = std::time::Instant::now();
    while !run.join("last.safetensors").exists() {
        assert!(waited.elapsed().as_secs() < 120, "no epoch after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let stopped = std::time::Instant::now();
    let kill = |signal: &str, pid: u32| {
        Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap()
    };
    assert!(kill("-STOP", rank1.id()).success());
    let out = rank0.wait_with_output().unwrap();
    let noticed = stopped.elapsed();
    kill("-KILL", rank1.id());
    let _ = rank1.wait();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("rank 1 has not answered for 3 s"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(noticed.as_secs() < 20, "noticed after {noticed:?}");
    // The last checkpoint it wrote is whole.
    let out = alexnet(&["eval", run.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
