//! Bad input: one line naming the thing and the reason, exit code 1, no panic, nothing lost.

mod common;
use common::*;

fn assert_clean_error(output: &std::process::Output, must_contain: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for needle in must_contain {
        assert!(lines[0].contains(needle), "`{needle}` missing from: {err}");
    }
}

/// A data set with train/ and val/, one class each split holding one real image (from fixtures).
fn small_set(name: &str) -> std::path::PathBuf {
    let root = temp_dir(name);
    for split in ["train", "val"] {
        for class in ["cat", "ship"] {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(
                fixtures().join("train").join(class).join("0000.jpg"),
                dir.join("a.jpg"),
            )
            .unwrap();
        }
    }
    root
}

fn train_on(data: &std::path::Path, run: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--set",
        "model.arch=alexnet-cifar",
        "--set",
        "data.resize=32",
        "--data",
        data.to_str().unwrap(),
        "--run-dir",
        run.to_str().unwrap(),
        "--quiet",
        "--epochs",
        "1",
    ];
    args.extend_from_slice(extra);
    alexnet(&args)
}

#[test]
fn missing_dataset_directory() {
    let run = temp_dir("missing-run");
    let out = train_on(std::path::Path::new("/nonexistent/data"), &run, &[]);
    assert_clean_error(&out, &["/nonexistent/data/train", "does not exist"]);
}

#[test]
fn empty_dataset_and_empty_class_folder() {
    let data = temp_dir("empty-data");
    std::fs::create_dir_all(data.join("train")).unwrap();
    let out = train_on(&data, &temp_dir("empty-run"), &[]);
    assert_clean_error(&out, &["train", "no class folders"]);

    // An empty class folder in both splits: --strict refuses it, naming the folder...
    let data = small_set("empty-class");
    for split in ["train", "val"] {
        std::fs::create_dir_all(data.join(split).join("dog")).unwrap();
    }
    let out = train_on(&data, &temp_dir("empty-class-run"), &["--strict"]);
    assert_clean_error(&out, &["train/dog", "has no images"]);

    // ...and by default the class keeps its label, and the run's report says why it has no images.
    let run = temp_dir("empty-class-skip-run");
    let out = train_on(&data, &run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = std::fs::read_to_string(run.join("skipped.tsv")).unwrap();
    assert!(
        report.contains("train/dog\tempty class folder") && report.contains("val/dog\tempty"),
        "{report}"
    );
    assert!(
        stderr(&out).contains("skipped 2 unusable files"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn undecodable_image_is_skipped_and_reported_or_fatal_with_strict() {
    let data = small_set("undecodable");
    // A JPEG cut short after its first marker.
    let whole = std::fs::read(fixtures().join("train/cat/0000.jpg")).unwrap();
    std::fs::write(
        data.join("train/cat/broken.jpg"),
        &whole[..whole.len() * 9 / 10],
    )
    .unwrap();

    let out = train_on(&data, &temp_dir("undecodable-strict-run"), &["--strict"]);
    assert_clean_error(&out, &["train/cat/broken.jpg", "truncated or corrupt JPEG"]);

    let run = temp_dir("undecodable-run");
    let out = train_on(&data, &run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = std::fs::read_to_string(run.join("skipped.tsv")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 2, "header and one file: {report}");
    assert!(
        lines[1].starts_with("train\t")
            && lines[1].contains("broken.jpg\ttruncated or corrupt JPEG"),
        "{report}"
    );

    // predict: the good image is classified and the broken one named on standard error...
    let good = data.join("train/cat/a.jpg");
    let broken = data.join("train/cat/broken.jpg");
    let predict = |strict: bool| {
        let paths = [&run, &good, &broken].map(|p| p.to_str().unwrap());
        let mut args = vec!["predict", paths[0], paths[1], paths[2]];
        if strict {
            args.push("--strict");
        }
        alexnet(&args)
    };
    let out = predict(false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("a.jpg") && !stdout(&out).contains("broken.jpg"));
    assert!(
        stderr(&out).contains("skipped") && stderr(&out).contains("broken.jpg"),
        "{}",
        stderr(&out)
    );
    // ...or, with --strict, is the error.
    let out = predict(true);
    assert_clean_error(&out, &["broken.jpg", "truncated or corrupt JPEG"]);
}

#[test]
fn unknown_model_and_bad_recipe_fields() {
    let out = alexnet(&["info", "--model", "vgg16"]);
    assert_clean_error(&out, &["unknown model `vgg16`"]);

    let data = small_set("bad-recipe");
    let out = train_on(&data, &temp_dir("bad-model-run"), &["--model", "lenet"]);
    assert_clean_error(&out, &["lenet"]);

    let recipe = data.join("bad.toml");
    std::fs::write(&recipe, "[optim]\nlearning_rate = 0.1\n").unwrap();
    let out = train_on(
        &data,
        &temp_dir("bad-field-run"),
        &["--recipe", recipe.to_str().unwrap()],
    );
    assert_clean_error(&out, &["bad.toml", "learning_rate"]);

    let out = train_on(
        &data,
        &temp_dir("bad-value-run"),
        &["--set", "model.dropout=1.5"],
    );
    assert_clean_error(&out, &["model.dropout"]);
}

#[test]
fn a_failing_resume_keeps_what_was_written() {
    let data = small_set("keep");
    let run = temp_dir("keep-run");
    let out = train_on(&data, &run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let checkpoint = std::fs::read(run.join("last.safetensors")).unwrap();
    let metrics_before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    // The data disappears; resuming fails cleanly and leaves the checkpoint and metrics intact.
    std::fs::remove_dir_all(data.join("train")).unwrap();
    let out = alexnet(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--quiet",
        "--epochs",
        "2",
    ]);
    assert_clean_error(&out, &["does not exist"]);
    assert_eq!(
        std::fs::read(run.join("last.safetensors")).unwrap(),
        checkpoint
    );
    assert_eq!(
        std::fs::read(run.join("metrics.jsonl")).unwrap(),
        metrics_before
    );

    // Training afresh into a directory that holds a run would overwrite it: refused.
    let out = train_on(&small_set("keep-again"), &run, &[]);
    assert_clean_error(&out, &["already holds a run"]);
    assert_eq!(
        std::fs::read(run.join("last.safetensors")).unwrap(),
        checkpoint
    );

    let out = alexnet(&["eval", "/nonexistent/ckpt.safetensors"]);
    assert_clean_error(&out, &["/nonexistent/ckpt.safetensors"]);
}

#[test]
fn prepare_of_nothing_or_with_bad_options() {
    let out = temp_dir("prepare-out");
    let run = |extra: &[&str]| {
        let mut args = vec!["prepare", "/nonexistent/images", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        alexnet(&args)
    };
    assert_clean_error(&run(&[]), &["/nonexistent/images", "does not exist"]);
    assert_clean_error(&run(&["--jpeg", "0"]), &["--jpeg 0", "between 1 and 100"]);
    assert_clean_error(
        &run(&["--format", "lmdb"]),
        &["lmdb", "image-folder, ilsvrc, cifar, idx"],
    );
    // Training on a half-prepared directory (no manifest) says so.
    std::fs::create_dir_all(out.join("train")).unwrap();
    let err = train_on(
        &out,
        &temp_dir("prepare-train-run"),
        &["--set", "data.format=\"shards\""],
    );
    assert_clean_error(&err, &["dataset.json", "did not finish"]);
}

#[test]
fn errors_name_the_flag_the_field_or_the_file_they_come_from() {
    let data = small_set("sources");
    // A flag's bad value names the flag, not the recipe file.
    let recipe = data.join("r.toml");
    std::fs::write(&recipe, "[optim]\nlr = 0.01\n").unwrap();
    let with_recipe = ["--recipe", recipe.to_str().unwrap()];
    let out = train_on(
        &data,
        &temp_dir("flag-model"),
        &[&with_recipe[..], &["--model", "resnet50"]].concat(),
    );
    assert_clean_error(&out, &["error: --model resnet50: model.arch", "resnet50"]);
    assert!(!stderr(&out).contains("r.toml"), "{}", stderr(&out));
    let out = train_on(
        &data,
        &temp_dir("flag-batch"),
        &[&with_recipe[..], &["--batch-size", "0"]].concat(),
    );
    assert_clean_error(
        &out,
        &["error: --batch-size 0: optim.batch_size must be in 1..=65536"],
    );
    // A wrong type in the file names the field.
    std::fs::write(&recipe, "[model]\ndropout = \"half\"\n").unwrap();
    let out = train_on(&data, &temp_dir("type-field"), &with_recipe);
    assert_clean_error(
        &out,
        &["recipe ", "r.toml: model.dropout: invalid type: string"],
    );
    // A field without a bound would have the kernel's OOM killer end the process: now a range.
    let out = train_on(
        &data,
        &temp_dir("huge-resize"),
        &["--set", "data.resize=100000"],
    );
    assert_clean_error(
        &out,
        &[
            "--set data.resize=100000",
            "data.resize must be in 1..=4096",
        ],
    );

    // A file where a data set directory is expected.
    let file = data.join("r.toml");
    let out = train_on(&file, &temp_dir("file-data"), &[]);
    assert_clean_error(&out, &["r.toml is a file, not a directory"]);

    // prepare of a source that is not there creates nothing.
    let out_dir =
        std::env::temp_dir().join(format!("alexnet-test-never-made-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = alexnet(&[
        "prepare",
        "/nonexistent/images",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_clean_error(&out, &["/nonexistent/images", "does not exist"]);
    assert!(!out_dir.exists(), "prepare created its OUT for nothing");
}

#[test]
fn a_validation_folder_may_lack_a_class_but_not_have_another() {
    // train/ has cat, dog (empty) and ship; val/ has no dog folder at all.
    let data = small_set("val-lacks");
    std::fs::create_dir_all(data.join("train/dog")).unwrap();
    let run = temp_dir("val-lacks-run");
    let out = train_on(&data, &run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Each class keeps its index: ship is 2 in the checkpoint and in the validation labels.
    let out = alexnet(&["eval", run.to_str().unwrap(), "--per-class", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("ship"), "{text}");

    // A class the training set does not have is a real mismatch: both lists in one line.
    std::fs::create_dir_all(data.join("val/frog")).unwrap();
    std::fs::copy(data.join("val/cat/a.jpg"), data.join("val/frog/a.jpg")).unwrap();
    let out = train_on(&data, &temp_dir("val-extra-run"), &[]);
    assert_clean_error(&out, &["frog", "\"cat\", \"dog\", \"ship\""]);
}
