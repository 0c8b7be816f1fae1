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

/// The demo recipe (no dropout, whose masks depend on how a batch is split) for one epoch in
/// batches of 100: 5 steps with momentum. (Over many more steps the runs drift apart from the last
/// bits of differently ordered sums, as runs on two machines would: ReLUs near zero flip. After
/// 16 steps of 32 images it was 3e-4.)
pub fn train_args<'a>(run_dir: &'a str, data: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--recipe",
        "recipes/demo.toml",
        "--data",
        data,
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--run-dir",
        run_dir,
        "--quiet",
    ]
}

/// Every weight and velocity of the two checkpoints agrees to `tolerance` of the tensor's
/// largest magnitude (or of 0.01, for tensors that start at zero and have barely moved). The
/// ranks add the same terms in another order, so the last bits differ (1e-7 after 5 steps); a
/// gradient weighted twice over is off by 8e-5 (measured by making it so).
pub fn assert_same_state(a: &Path, b: &Path, tolerance: f32) {
    let (_, mut a_tensors) = alexnet_data::read_tensors(a).unwrap();
    let (_, mut b_tensors) = alexnet_data::read_tensors(b).unwrap();
    a_tensors.sort_by(|x, y| x.name.cmp(&y.name));
    b_tensors.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(a_tensors.len(), b_tensors.len());
    let mut compared = 0;
    for (x, y) in a_tensors.iter().zip(&b_tensors) {
        assert_eq!(x.name, y.name);
        if !(x.name.starts_with("model.") || x.name.starts_with("velocity.")) {
            continue;
        }
        let scale = x.values.iter().fold(0.01f32, |m, v| m.max(v.abs()));
        let worst = x
            .values
            .iter()
            .zip(&y.values)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            worst <= tolerance * scale,
            "{}: differs by {worst} (largest value {scale})",
            x.name
        );
        compared += 1;
    }
    // 5 layers of weights and biases, and their velocities.
    assert_eq!(compared, 20);
}
