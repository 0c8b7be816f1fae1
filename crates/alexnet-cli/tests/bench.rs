//! `alexnet bench` runs and reports what it says it measures (the speeds themselves are measured
//! by benchmarks/, never asserted here).

mod common;
use common::*;

/// `alexnet bench model` of alexnet-cifar (10 classes) in `mode` at `batch`, as JSON.
fn bench_model(name: &str, mode: &str, batch: usize, layers: bool) -> serde_json::Value {
    let dir = temp_dir(name);
    let json = dir.join("model.json");
    let batch = batch.to_string();
    let mut args = vec![
        "bench",
        "model",
        "--model",
        "alexnet-cifar",
        "--classes",
        "10",
        "--mode",
        mode,
        "--batch-size",
        &batch,
        "--warmup",
        "1",
        "--iterations",
        "1",
        "--json",
        json.to_str().unwrap(),
    ];
    if layers {
        args.push("--layers");
    }
    let out = alexnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// What a report says one image costs: GFLOP/s times the step's time, per image, in FLOPs.
fn flops_per_image(report: &serde_json::Value) -> f64 {
    let gflops = report["gflops"].as_f64().unwrap();
    let step_ms = report["step_ms"].as_f64().unwrap();
    gflops * 1e9 * step_ms / 1e3 / report["batch_size"].as_f64().unwrap()
}

#[test]
fn bench_model_reports_every_layer_and_consistent_rates() {
    let train = bench_model("bench-train", "train", 16, true);
    let names: Vec<&str> = train["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2", "pool2", "conv3",
            "relu3", "pool3", "fc7", "relu7", "drop7", "fc8"
        ]
    );
    let step = train["step_ms"].as_f64().unwrap();
    let rate = train["images_per_second"].as_f64().unwrap();
    assert!((rate - 16.0 / (step / 1e3)).abs() < 1e-6 * rate);
    assert!(train["peak_memory_mb"].as_f64().unwrap() > 10.0);

    // The FLOPs the rates stand for, checked by relations between runs rather than by the
    // bench's own formula: an image costs the same at any batch size, and a training step three
    // forward passes (the backward pass computes two products per forward one).
    let inference = bench_model("bench-inference", "inference", 8, false);
    let (train_per_image, inference_per_image) =
        (flops_per_image(&train), flops_per_image(&inference));
    let relative = |a: f64, b: f64| (a - b).abs() / b;
    assert!(
        relative(train_per_image, 3.0 * inference_per_image) < 1e-9,
        "training {train_per_image} FLOPs an image, inference {inference_per_image}"
    );
    // And one independent anchor: the multiply-adds counted here from the layer shapes (conv1
    // 32 maps of 32x32 from 3x5x5, conv2 32 of 15x15 from 32x5x5, conv3 64 of 7x7 from 32x5x5,
    // fc 576x64 and 64x10), at 2 FLOPs each.
    let macs = 32 * 1024 * 75 + 32 * 225 * 800 + 64 * 49 * 800 + 576 * 64 + 64 * 10;
    assert!(
        relative(inference_per_image, 2.0 * macs as f64) < 1e-9,
        "{inference_per_image} FLOPs an image against {macs} multiply-adds"
    );
    // The per-layer rows use the same count: conv1's forward GFLOP/s over its time is its share.
    let conv1 = &train["layers"][0];
    let conv1_flops =
        conv1["forward_gflops"].as_f64().unwrap() * 1e9 * conv1["forward_ms"].as_f64().unwrap()
            / 1e3
            / 16.0;
    assert!(relative(conv1_flops, 2.0 * (32 * 1024 * 75) as f64) < 1e-9);
}

#[test]
fn bench_data_measures_the_folder_and_the_shards() {
    let dir = temp_dir("bench-data");
    let shards = dir.join("shards");
    let out = prepare_fixtures(&shards, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = dir.join("data.json");
    let out = alexnet(&[
        "bench",
        "data",
        "--folder",
        fixtures().join("train").to_str().unwrap(),
        "--shards",
        shards.to_str().unwrap(),
        "--images",
        "50",
        "--shard-images",
        "64",
        "--side",
        "32",
        "--crop",
        "24",
        "--threads",
        "1,2",
        "--repeat",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let seen: Vec<(String, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["threads"].as_u64().unwrap(),
                r["images"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("folder".into(), 1, 50),
            ("folder".into(), 2, 50),
            ("shards".into(), 1, 64),
            ("shards".into(), 2, 64)
        ]
    );
    for r in &rows {
        let per_core = r["images_per_second_per_core"].as_f64().unwrap();
        let all = r["images_per_second"].as_f64().unwrap();
        assert!((per_core * r["threads"].as_f64().unwrap() - all).abs() < 1e-6 * all);
    }
}
