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
    experiment_named("tiny", dir, out, env)
}

fn experiment_named(
    name: &str,
    dir: &Path,
    out: &Path,
    env: Option<(&str, &str)>,
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alexnet"));
    command
        .args([
            "experiment",
            name,
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

/// `alexnet experiment NAME --jobs 2`.
fn two_jobs(name: &str, dir: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(["experiment", name, "--quiet", "--jobs", "2"])
        .args(["--dir", dir.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .current_dir(repo_root())
        .output()
        .unwrap()
}

#[test]
fn with_jobs_the_runs_train_side_by_side_as_alexnet_train_processes() {
    let dir = temp_dir("experiment-jobs-defs");
    std::fs::write(dir.join("tiny.toml"), TINY).unwrap();
    let (alone, side_by_side) = (temp_dir("experiment-jobs-1"), temp_dir("experiment-jobs-2"));
    // The reference with the threads each of two jobs gets (another thread count adds in
    // another order: 1.3e-5 apart after these 2 epochs).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / 2).max(1).to_string();
    let out = experiment(&dir, &alone, Some(("RAYON_NUM_THREADS", &threads)));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = two_jobs("tiny", &dir, &side_by_side);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches(": started").count(),
        2,
        "{}",
        stdout(&out)
    );
    for run in ["lrn-seed0", "no-lrn-seed0"] {
        let log = side_by_side.join("tiny").join(format!("{run}.log"));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("done: 2 epochs"), "{}: {text}", log.display());
        // The same runs as in one process, one after the other.
        assert_same_state(
            &alone.join("tiny").join(run).join("last.safetensors"),
            &side_by_side.join("tiny").join(run).join("last.safetensors"),
            1e-5,
        );
    }
    let md = std::fs::read_to_string(side_by_side.join("tiny/results.md")).unwrap();
    assert!(md.contains("| lrn |") && md.contains("| no-lrn |"), "{md}");
    // Given again, nothing is trained.
    let again = two_jobs("tiny", &dir, &side_by_side);
    assert_eq!(stdout(&again).matches("skipped: finished").count(), 2);

    // A run whose process fails ends the experiment with an error that points at its log.
    let broken = TINY.replace("fixtures/cifar10-mini", "fixtures/no-such-data");
    std::fs::write(dir.join("broken.toml"), broken).unwrap();
    let failed = two_jobs("broken", &dir, &side_by_side);
    assert!(!failed.status.success());
    let err = stderr(&failed);
    assert!(
        err.contains("alexnet train failed") && err.contains("broken/lrn-seed0.log"),
        "{err}"
    );
    let log = std::fs::read_to_string(side_by_side.join("broken/lrn-seed0.log")).unwrap();
    assert!(log.contains("no-such-data"), "{log}");
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

    test_time_arms_share_the_finished_runs(&dir, &out);

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

/// A second experiment under the same --out: its arm that is `tiny`'s `lrn` arm links to that
/// run instead of training it; its 10-crop and ensemble arms give the figures `alexnet eval`
/// gives on the same checkpoints, and a re-run evaluates nothing again.
fn test_time_arms_share_the_finished_runs(dir: &Path, out: &Path) {
    let later = TINY
        .replace("seeds = 1", "seeds = 2")
        .replace("name = \"lrn\"", "name = \"same\"")
        .replace(
            "name = \"no-lrn\"\nset = [\"model.lrn=false\"]",
            "name = \"same-ten\"\nruns_of = \"same\"\nviews = \"ten-crop\"",
        )
        + "[[arm]]\nname = \"pair\"\nruns_of = \"same\"\nensemble = 2\n"
        + "[[baseline]]\nmethod = \"knn-pixels\"\npaper = \"-\"\n";
    std::fs::write(dir.join("later.toml"), later).unwrap();
    let run = || experiment_named("later", dir, out, None);
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    assert!(
        text.contains("same seed 0: the same run as ../tiny/lrn-seed0"),
        "{text}"
    );
    assert!(text.contains("same seed 1: started"), "{text}");
    let results = out.join("later");
    assert!(results.join("same-seed0").is_symlink());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    let arm = |name: &str| {
        json["arms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["arm"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(arm("same-ten")["finished"], 2);
    assert_eq!(arm("pair")["finished"], 1);
    assert!(arm("pair")["train_top1_error"].is_null());
    // The k-NN row: fitted on the fixture's 500 training images, measured on its 100 test images.
    assert_eq!(json["baselines"][0]["train_images"], 500);
    let knn = arm("knn-pixels")["val_top1_error"]["mean"]
        .as_f64()
        .unwrap();
    assert_eq!(json["baselines"][0]["top1_error"].as_f64(), Some(knn));
    let md = std::fs::read_to_string(results.join("results.md")).unwrap();
    assert!(md.contains("## Classical baselines"), "{md}");
    let top1 = |args: &[&str]| {
        let out = alexnet(&[&["eval", "--quiet"], args].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let at = text.find("top-1 error ").unwrap() + "top-1 error ".len();
        text[at..at + 6].parse::<f64>().unwrap()
    };
    let last = |run: &str| {
        results
            .join(run)
            .join("last.safetensors")
            .to_str()
            .unwrap()
            .to_string()
    };
    let pair = arm("pair")["val_top1_error"]["mean"].as_f64().unwrap();
    assert!(
        (pair - top1(&[&last("same-seed0"), &last("same-seed1")])).abs() < 1e-4,
        "ensemble of 2: {pair}"
    );
    let ten = &json["evaluations"][0][1][0];
    assert_eq!(ten["seeds"], serde_json::json!([0]));
    let ten = ten["top1_error"].as_f64().unwrap();
    assert!(
        (ten - top1(&["--ten-crop", &last("same-seed0")])).abs() < 1e-4,
        "10-crop: {ten}"
    );

    let cache = std::fs::read(results.join("same-ten-eval.json")).unwrap();
    let again = run();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again).matches("skipped: finished").count(), 2);
    assert_eq!(
        std::fs::read(results.join("same-ten-eval.json")).unwrap(),
        cache
    );
}

#[test]
fn the_shipped_experiments_read() {
    let out = alexnet(&["experiment", "--list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in [
        "lrn",
        "pooling",
        "dropout",
        "augmentation",
        "relu-vs-tanh",
        "ten-crop",
        "ensemble",
        "towers",
    ] {
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

/// Figure 1 measures the time to a training error: with `stop_at_target` a run ends at the first
/// epoch that reaches it, counts as finished there, and is skipped when the command is given
/// again.
#[test]
fn runs_stop_at_the_training_error_target_and_count_as_finished() {
    let dir = temp_dir("experiment-stop-defs");
    // 10 classes: any net is under 99% training error after one epoch, none reaches 0%.
    let text = TINY
        .replace(
            "train_error_target = 0.95",
            "train_error_target = 0.99\nstop_at_target = true",
        )
        .replace("epochs = 2", "epochs = 3");
    std::fs::write(dir.join("tiny.toml"), text).unwrap();
    let out = temp_dir("experiment-stop-out");
    let first = experiment(&dir, &out, None);
    assert!(first.status.success(), "{}", stderr(&first));
    for arm in ["lrn", "no-lrn"] {
        let epochs = metrics(&out.join(format!("tiny/{arm}-seed0"))).len();
        assert_eq!(
            epochs, 1,
            "{arm} trained {epochs} epochs, its target reached after 1"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tiny/results.json")).unwrap())
            .unwrap();
    for arm in json["arms"].as_array().unwrap() {
        assert_eq!(arm["finished"], 1, "{arm}");
        assert_eq!(arm["target_epoch"]["mean"], 1.0, "{arm}");
    }
    let md = std::fs::read_to_string(out.join("tiny/results.md")).unwrap();
    assert!(md.contains("--stop-at-train-error 0.99"), "{md}");
    let again = experiment(&dir, &out, None);
    assert_eq!(
        stdout(&again).matches("skipped: finished").count(),
        2,
        "{}",
        stdout(&again)
    );

    // By hand, a target no run reaches in 2 epochs lets it run them all.
    let run = temp_dir("stop-never").join("run");
    let out = alexnet(&[
        "train",
        "--recipe",
        "recipes/demo.toml",
        "--set",
        "run.epochs=2",
        "--quiet",
        "--stop-at-train-error",
        "0",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(metrics(&run).len(), 2);
    let bad = alexnet(&[
        "train",
        "--recipe",
        "recipes/demo.toml",
        "--stop-at-train-error",
        "2",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("not an error rate"),
        "{}",
        stderr(&bad)
    );
}
