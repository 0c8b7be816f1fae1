//! The whole system on the 600 committed CIFAR-10 images: train, evaluate, predict, resume.

mod common;
use common::*;

#[test]
fn training_lowers_the_loss_and_beats_chance_then_eval_and_predict_work() {
    let run = temp_dir("e2e");
    let out = train_demo(&run, &["--epochs", "8"]);
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let m = metrics(&run);
    assert_eq!(m.len(), 8);
    let first_loss = m[0]["train_loss"].as_f64().unwrap();
    let last_loss = m[7]["train_loss"].as_f64().unwrap();
    assert!(
        last_loss < 0.93 * first_loss,
        "loss {first_loss} -> {last_loss}"
    );
    // Ten classes: chance is 0.9 top-1 error. The best epoch must be well below it.
    let best = m
        .iter()
        .map(|e| e["val_top1_error"].as_f64().unwrap())
        .fold(1.0, f64::min);
    assert!(best < 0.8, "best val top-1 error {best}");

    let test_split = fixtures().join("test");
    let eval = alexnet(&[
        "eval",
        run.to_str().unwrap(),
        "--data",
        test_split.to_str().unwrap(),
        "--quiet",
        "--json",
        run.join("eval.json").to_str().unwrap(),
    ]);
    assert!(eval.status.success(), "eval failed: {}", stderr(&eval));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(report["images"], 100);
    let top1 = report["top1_error"].as_f64().unwrap();
    assert!(
        (top1 - best).abs() < 1e-9,
        "eval of best.safetensors {top1} differs from training's best {best}"
    );
    assert!(report["top5_error"].as_f64().unwrap() <= top1);

    let ten = alexnet(&[
        "eval",
        run.to_str().unwrap(),
        "--data",
        test_split.to_str().unwrap(),
        "--quiet",
        "--ten-crop",
    ]);
    assert!(ten.status.success(), "{}", stderr(&ten));
    assert!(stdout(&ten).contains("10-crop"));

    // An ensemble of the best and last checkpoints.
    let ensemble = alexnet(&[
        "eval",
        run.join("best.safetensors").to_str().unwrap(),
        run.join("last.safetensors").to_str().unwrap(),
        "--data",
        test_split.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ensemble.status.success(), "{}", stderr(&ensemble));
    assert!(stdout(&ensemble).contains("ensemble of 2"));

    let image = test_split.join("ship/0000.jpg");
    let words = run.join("words.txt");
    std::fs::write(&words, "ship a vessel on water\n").unwrap();
    let predictions = run.join("predictions.json");
    let predict = alexnet(&[
        "predict",
        run.to_str().unwrap(),
        image.to_str().unwrap(),
        "--synset-words",
        words.to_str().unwrap(),
        "--json",
        predictions.to_str().unwrap(),
    ]);
    assert!(predict.status.success(), "{}", stderr(&predict));
    let text = stdout(&predict);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let percentages: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.trim().split('%').next().unwrap().trim().parse().unwrap())
        .collect();
    assert!(
        percentages.windows(2).all(|w| w[0] >= w[1]),
        "sorted: {percentages:?}"
    );
    assert!(percentages.iter().sum::<f64>() <= 100.01);
    assert!(
        text.contains("ship a vessel on water"),
        "synset words are used: {text}"
    );
    // The JSON holds what was printed: the same labels, the same percentages.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&predictions).unwrap()).unwrap();
    let top = json[0]["top"].as_array().unwrap();
    assert_eq!(json[0]["image"], image.to_str().unwrap());
    assert_eq!(top.len(), 5);
    for (ranked, printed) in top.iter().zip(&percentages) {
        let percent = 100.0 * ranked["probability"].as_f64().unwrap();
        assert!((percent - printed).abs() < 0.006, "{percent} vs {printed}");
    }
}

#[test]
fn validation_every_second_epoch_over_the_centre_and_its_reflection() {
    let run = temp_dir("every2");
    let out = train_demo(
        &run,
        &[
            "--epochs",
            "3",
            "--set",
            "run.validate_every=2",
            "--set",
            "data.val_views=\"centre-flip\"",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let m = metrics(&run);
    assert_eq!(m.len(), 3);
    // Epoch 1 is skipped, epoch 2 is the interval's, epoch 3 the run's last.
    assert!(m[0]["val_top1_error"].is_null(), "{:?}", m[0]);
    assert!(m[0]["val_top5_error"].is_null(), "{:?}", m[0]);
    assert!(m[1]["val_top1_error"].is_f64() && m[2]["val_top5_error"].is_f64());
    let last = m[2]["val_top1_error"].as_f64().unwrap();

    // The trainer's figure is what eval gives the last checkpoint over the same two views.
    let json = run.join("flip.json");
    let eval = alexnet(&[
        "eval",
        run.join("last.safetensors").to_str().unwrap(),
        "--views",
        "centre-flip",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    assert!(
        stdout(&eval).contains("centre + reflection"),
        "{}",
        stdout(&eval)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let top1 = report["top1_error"].as_f64().unwrap();
    assert!((top1 - last).abs() < 1e-9, "eval {top1}, training {last}");

    // The plateau rule reads every epoch's error: it refuses an interval.
    let refused = train_demo(
        &temp_dir("every2-plateau"),
        &[
            "--set",
            "run.validate_every=2",
            "--set",
            "schedule.policy=\"plateau\"",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("run.validate_every"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_resumed_run_reproduces_the_uninterrupted_one() {
    let straight = temp_dir("straight");
    let out = train_demo(&straight, &["--epochs", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let split = temp_dir("split");
    let out = train_demo(&split, &["--epochs", "3", "--stop-after", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(metrics(&split).len(), 1);
    let out = alexnet(&["train", "--resume", split.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let (a, b) = (metrics(&straight), metrics(&split));
    assert_eq!(a.len(), 3);
    assert_eq!(b.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        for key in [
            "epoch",
            "step",
            "lr",
            "val_top1_error",
            "val_top5_error",
            "train_top1_error",
        ] {
            assert_eq!(x[key], y[key], "{key} at epoch {}", x["epoch"]);
        }
        let (lx, ly) = (
            x["train_loss"].as_f64().unwrap(),
            y["train_loss"].as_f64().unwrap(),
        );
        assert!((lx - ly).abs() < 1e-5 * lx, "train loss {lx} vs {ly}");
    }
}

#[test]
fn prepared_shards_train_like_the_folder_and_evaluate() {
    let shards = temp_dir("e2e-shards");
    let out = prepare_fixtures(&shards, &["--shard-size", "128"]);
    assert!(out.status.success(), "prepare failed: {}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains("train") && said.contains("500 images"),
        "{said}"
    );
    assert!(
        said.contains("test") && said.contains("100 images"),
        "{said}"
    );

    // The same pixels and the same seeded augmentation: the same training, step for step.
    let from_folder = temp_dir("e2e-from-folder");
    let out = train_demo(&from_folder, &["--epochs", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let from_shards = temp_dir("e2e-from-shards");
    let out = alexnet(&[
        "train",
        "--recipe",
        "recipes/demo.toml",
        "--data",
        shards.to_str().unwrap(),
        "--run-dir",
        from_shards.to_str().unwrap(),
        "--quiet",
        "--epochs",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let recipe = std::fs::read_to_string(from_shards.join("recipe.toml")).unwrap();
    assert!(recipe.contains("format = \"shards\""), "{recipe}");
    for (a, b) in metrics(&from_folder).iter().zip(&metrics(&from_shards)) {
        for key in ["train_loss", "val_top1_error", "val_top5_error"] {
            let (a, b) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{key}: {a} vs {b}"
            );
        }
    }

    // Evaluating on the shards' test split gives what training measured.
    let eval = alexnet(&[
        "eval",
        from_shards.join("last.safetensors").to_str().unwrap(),
        "--data",
        shards.to_str().unwrap(),
        "--split",
        "test",
        "--quiet",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let last = metrics(&from_shards)[1]["val_top1_error"].as_f64().unwrap();
    assert!(
        stdout(&eval).contains(&format!("top-1 error {last:.4}")),
        "{} vs {last}",
        stdout(&eval)
    );
}
