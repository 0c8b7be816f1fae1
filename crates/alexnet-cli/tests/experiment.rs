//! `alexnet experiment` on a tiny two-arm experiment over the committed images: both arms in the
//! table, a finished run skipped when the command is given again, an interrupted one resumed.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

const TINY: &str = r#"
claim = "LRN lowers the error"
section = "3.3"
base = "recipes/demo.toml"
set = ["data.dir=\"fixtures/cifar10-mini\""]
train_error_target = 0.95
[scale.small]
epochs = 2
seeds = 1
[scale.full]
epochs = 3
seeds = 2
[[arm]]
name = "lrn"
set = ["model.lrn=true"]
paper = "11%"
[[arm]]
name = "no-lrn"
set = ["model.lrn=false"]
paper = "13%"
"#;

fn experiment(dir: &Path, out: &Path, env: Option<(&str, &str)>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alexnet"));
    command
        .args([
            "experiment",
            "tiny",
            "--quiet",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .args(["--out", out.to_str().unwrap()])
        .current_dir(repo_root());
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn a_two_arm_experiment_runs_skips_what_is_done_and_resumes_what_is_not() {
    let dir = temp_dir("experiment-defs");
    std::fs::write(dir.join("tiny.toml"), TINY).unwrap();
    let listed = alexnet(&["experiment", "--list", "--dir", dir.to_str().unwrap()]);
    assert!(stdout(&listed).contains("tiny") && stdout(&listed).contains("2 arms"));

    let out = temp_dir("experiment-out");
    let first = experiment(&dir, &out, None);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    assert_eq!(text.matches(": started").count(), 2, "{text}");
    let results = out.join("tiny");
    let md = std::fs::read_to_string(results.join("results.md")).unwrap();
    for row in ["| lrn | 11% |", "| no-lrn | 13% |"] {
        assert!(md.contains(row), "{row} missing from:\n{md}");
    }
    assert!(
        md.contains("--set 'model.lrn=false'"),
        "the command of each run: {md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    let arms = json["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    for arm in arms {
        assert_eq!(
            (arm["finished"].as_u64(), arm["planned"].as_u64()),
            (Some(1), Some(1))
        );
        let error = arm["val_top1_error"]["mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&error));
    }
    // The two arms are different networks: their training losses differ.
    let loss = |arm: &str| metrics(&results.join(format!("{arm}-seed0")))[1]["train_loss"].clone();
    assert_ne!(loss("lrn"), loss("no-lrn"));
    let png = image::open(results.join("errors.png")).unwrap();
    assert_eq!((png.width(), png.height()), (900, 500));
    let before = metrics(&results.join("lrn-seed0"));

    // Again: nothing to train.
    let again = experiment(&dir, &out, None);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stdout(&again).matches("skipped: finished").count(),
        2,
        "{}",
        stdout(&again)
    );
    assert_eq!(metrics(&results.join("lrn-seed0")), before);

    // Interrupted in the first run's second epoch (after its metrics line, before its
    // checkpoint): the next call resumes it after epoch 1 and starts the second.
    let out = temp_dir("experiment-interrupted");
    let crashed = experiment(&dir, &out, Some(("ALEXNET_CRASH_AT", "metrics-written:2")));
    assert!(!crashed.status.success());
    let resumed = experiment(&dir, &out, None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let text = stdout(&resumed);
    assert!(text.contains("lrn seed 0: resumed after epoch 1"), "{text}");
    assert!(text.contains("no-lrn seed 0: started"), "{text}");
    let epochs: Vec<u64> = metrics(&out.join("tiny/lrn-seed0"))
        .iter()
        .map(|m| m["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2]);
    // And it is the run the uninterrupted experiment made, metric for metric.
    for (a, b) in metrics(&out.join("tiny/lrn-seed0")).iter().zip(&before) {
        assert_eq!(a["val_top1_error"], b["val_top1_error"]);
        assert_eq!(a["train_top1_error"], b["train_top1_error"]);
    }
}

#[test]
fn the_shipped_experiments_read() {
    let out = alexnet(&["experiment", "--list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["lrn", "pooling", "dropout", "augmentation", "relu-vs-tanh"] {
        assert!(stdout(&out).contains(name), "{name}: {}", stdout(&out));
    }
    let out = alexnet(&["experiment", "no-such"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no experiment \"no-such\""),
        "{}",
        stderr(&out)
    );
}
