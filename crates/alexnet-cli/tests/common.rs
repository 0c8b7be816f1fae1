//! Helpers shared by the end-to-end tests: run the real `alexnet` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn fixtures() -> PathBuf {
    repo_root().join("fixtures/cifar10-mini")
}

pub fn alexnet(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the alexnet binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The per-epoch metrics a run wrote.
pub fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `alexnet prepare` of the committed fixtures into `out` at 32x32, with `extra` flags.
pub fn prepare_fixtures(out: &Path, extra: &[&str]) -> Output {
    let fixtures = fixtures();
    let mut args = vec![
        "prepare",
        fixtures.to_str().unwrap(),
        out.to_str().unwrap(),
        "--side",
        "32",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    alexnet(&args)
}

/// `alexnet train` of `recipes/demo.toml` on the committed images into `run_dir`, with `extra`
/// flags.
pub fn train_demo(run_dir: &Path, extra: &[&str]) -> Output {
    let data = fixtures();
    let mut args = vec![
        "train",
        "--recipe",
        "recipes/demo.toml",
        "--data",
        data.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    alexnet(&args)
}
