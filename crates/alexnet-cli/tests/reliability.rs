//! Runs that cannot be mixed up or lose their record: one writer per run directory, an epoch's
//! record whole after a crash at any point of writing it, checkpoints that refuse to load
//! corrupted, and runs that say when they have nothing to do.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};

use alexnet_data::read_tensors;

fn demo_command(run_dir: &Path, epochs: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alexnet"));
    command
        .args(["train", "--recipe", "recipes/demo.toml", "--quiet"])
        .args(["--data", fixtures().to_str().unwrap()])
        .args(["--run-dir", run_dir.to_str().unwrap(), "--epochs", epochs])
        .current_dir(repo_root());
    command
}

/// The epochs of `metrics.jsonl`, in file order (a line written twice shows twice).
fn recorded_epochs(run_dir: &Path) -> Vec<u64> {
    metrics(run_dir)
        .iter()
        .map(|m| m["epoch"].as_u64().unwrap())
        .collect()
}

/// `epochs_done` of a checkpoint's progress record.
fn checkpoint_epoch(path: &Path) -> u64 {
    let (metadata, _) = read_tensors(path).unwrap();
    let progress: serde_json::Value = serde_json::from_str(&metadata["progress"]).unwrap();
    progress["epochs_done"].as_u64().unwrap()
}

#[test]
fn two_trains_into_one_run_directory_exactly_one_runs() {
    let run = temp_dir("two-writers");
    let mut first = demo_command(&run, "3")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The first holds the lock from its start (before it decodes a single image).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = demo_command(&run, "3").output().unwrap();
    let first_status = first.wait().unwrap();
    assert!(first_status.success());
    assert_eq!(second.status.code(), Some(1));
    let err = stderr(&second);
    assert!(
        err.contains(&format!("in use by process {} (alexnet train)", first.id())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // The run is the first's alone.
    assert_eq!(recorded_epochs(&run), [1, 2, 3]);
    // Once it has ended its lock is gone (the kernel released it): the run can be resumed.
    let out = alexnet(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "4",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_epochs(&run), [1, 2, 3, 4]);
}

#[test]
fn a_crash_at_any_point_of_an_epochs_record_loses_nothing_on_resume() {
    // The uninterrupted run, and the epoch whose record a crash will cut: one that is a new best
    // (so that `best` is linked in it), after the first.
    let straight = temp_dir("crash-straight");
    let out = demo_command(&straight, "4").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let errors: Vec<f64> = metrics(&straight)
        .iter()
        .map(|m| m["val_top1_error"].as_f64().unwrap())
        .collect();
    let crash_epoch = (1..errors.len())
        .find(|&i| errors[..i].iter().all(|&e| errors[i] < e))
        .map(|i| i + 1)
        .expect("the validation error improves after epoch 1 on the demo");
    let weights = |run: &Path| {
        let (_, mut tensors) = read_tensors(&run.join("last.safetensors")).unwrap();
        tensors.retain(|t| !t.name.starts_with("stats."));
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        tensors
    };
    let straight_weights = weights(&straight);

    for point in [
        "checkpoint-written",
        "metrics-written",
        "best-linked",
        "last-committed",
    ] {
        let run = temp_dir(&format!("crash-{point}"));
        let crashed = demo_command(&run, "4")
            .env("ALEXNET_CRASH_AT", format!("{point}:{crash_epoch}"))
            .output()
            .unwrap();
        assert!(
            !crashed.status.success(),
            "{point}: the crash point was reached"
        );
        assert!(
            stderr(&crashed).contains(&format!("crash point {point}")),
            "{point}"
        );

        let out = alexnet(&["train", "--resume", run.to_str().unwrap(), "--quiet"]);
        assert!(out.status.success(), "{point}: {}", stderr(&out));
        // Every epoch's line exactly once, and the same as the uninterrupted run's.
        assert_eq!(recorded_epochs(&run), [1, 2, 3, 4], "{point}");
        for (a, b) in metrics(&run).iter().zip(metrics(&straight)) {
            assert_eq!(a["val_top1_error"], b["val_top1_error"], "{point}");
            assert_eq!(a["train_top1_error"], b["train_top1_error"], "{point}");
        }
        // `best` is the best epoch's checkpoint; `last` holds bit for bit the uninterrupted run's
        // weights and velocities (its wall time differs).
        let best_epoch = checkpoint_epoch(&run.join("best.safetensors")) as usize;
        let lowest = errors.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(
            errors[best_epoch - 1],
            lowest,
            "{point}: best is epoch {best_epoch}"
        );
        assert!(weights(&run) == straight_weights, "{point}: other weights");
        // Nothing half-written is left.
        let leftovers: Vec<_> = std::fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
    }

    // A crash in the first epoch's record leaves no checkpoint: the run starts afresh, once.
    let run = temp_dir("crash-first");
    let crashed = demo_command(&run, "2")
        .env("ALEXNET_CRASH_AT", "best-linked:1")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    assert_eq!(recorded_epochs(&run), [1]);
    let out = demo_command(&run, "2").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_epochs(&run), [1, 2]);
}

/// The offset of the data section of a safetensors file (after its 8-byte length and header).
fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn a_corrupt_or_non_finite_checkpoint_is_refused_naming_its_tensor() {
    let run = temp_dir("corrupt");
    let out = demo_command(&run, "1").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let good = std::fs::read(run.join("last.safetensors")).unwrap();
    let bad = run.join("bad.safetensors");
    let image = fixtures().join("test/cat/0000.jpg");

    // One flipped bit anywhere in the tensors' data.
    let mut flipped = good.clone();
    let middle = data_start(&good) + (good.len() - data_start(&good)) / 2;
    flipped[middle] ^= 0x10;
    std::fs::write(&bad, &flipped).unwrap();
    for command in [
        vec!["eval", bad.to_str().unwrap()],
        vec!["predict", bad.to_str().unwrap(), image.to_str().unwrap()],
    ] {
        let out = alexnet(&command);
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        let err = stderr(&out);
        assert!(
            err.contains("does not match its checksum") && err.contains("tensor "),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // A NaN where a weight was, written with a valid checksum (as a diverged run would save it).
    let (metadata, mut tensors) = read_tensors(&run.join("last.safetensors")).unwrap();
    let weight = tensors
        .iter_mut()
        .find(|t| t.name == "model.features.0.conv.weight")
        .unwrap();
    weight.values[3] = f32::NAN;
    let named: Vec<_> = tensors.iter().map(|t| t.borrowed("")).collect();
    alexnet_data::write_tensors(&bad, &named, metadata).unwrap();
    let out = alexnet(&["predict", bad.to_str().unwrap(), image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("model.features.0.conv.weight holds NaN at index 3"),
        "{err}"
    );
}

#[test]
fn zero_epochs_and_a_resume_with_nothing_to_do_say_so() {
    let run = temp_dir("nothing-to-do");
    let out = demo_command(&run, "0").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--epochs 0: nothing to train"),
        "{}",
        stderr(&out)
    );

    let out = demo_command(&run, "2").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = alexnet(&["train", "--resume", run.to_str().unwrap(), "--epochs", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing to do") && stdout(&out).contains("2 epochs done already"),
        "{}",
        stdout(&out)
    );
    assert_eq!(recorded_epochs(&run), [1, 2]);
}

#[test]
fn a_learning_rate_that_leaves_the_network_at_chance_is_named_once() {
    // lr 10 on the demo: the ReLUs die, the training error stays at chance (0.9) and the weights
    // grow to 1e3 and beyond (the case the issue saw); the run goes on, but says so once. Four
    // epochs: the warning comes after the third, and the fourth must not repeat it; a fifth may
    // already overflow to NaN (on some CPUs it does, at epoch 5), which is the divergence test's.
    let run = temp_dir("stuck");
    let out = demo_command(&run, "4")
        .args(["--lr", "10"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("stayed at chance"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("optim.lr = 10 "), "{err}");
    // The demo's own rate learns: no warning.
    let run = temp_dir("not-stuck");
    let out = demo_command(&run, "5").output().unwrap();
    assert!(out.status.success());
    assert!(
        !stderr(&out).contains("stayed at chance"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_prepare_into_an_out_in_use_is_refused_and_leaves_it_alone() {
    let out = temp_dir("prepare-locked");
    // Another writer (here: this test) holds OUT.
    let held = alexnet_data::DirLock::acquire(&out, "prepare").unwrap();
    let refused = prepare_fixtures(&out, &[]);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "in use by process {} (alexnet prepare)",
            std::process::id()
        )),
        "{err}"
    );
    assert!(!out.join("dataset.json").exists() && !out.join("train").exists());
    drop(held);
    // A crash's temporary files are removed when the next prepare takes OUT.
    std::fs::write(out.join("stats.json.999-0.tmp"), b"half").unwrap();
    let done = prepare_fixtures(&out, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(out.join("dataset.json").exists());
    assert!(!out.join("stats.json.999-0.tmp").exists());
}
