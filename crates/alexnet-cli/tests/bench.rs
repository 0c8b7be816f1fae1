//! `alexnet bench` runs and reports what it says it measures (the speeds themselves are measured
//! by benchmarks/, never asserted here).

mod common;
use common::*;

#[test]
fn bench_model_reports_every_layer_and_consistent_rates() {
    let dir = temp_dir("bench-model");
    let json = dir.join("model.json");
    let out = alexnet(&[
        "bench",
        "model",
        "--model",
        "alexnet-cifar",
        "--classes",
        "10",
        "--batch-size",
        "16",
        "--warmup",
        "1",
        "--iterations",
        "1",
        "--layers",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let names: Vec<&str> = report["layers"]
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
    let step = report["step_ms"].as_f64().unwrap();
    let rate = report["images_per_second"].as_f64().unwrap();
    assert!((rate - 16.0 / (step / 1e3)).abs() < 1e-6 * rate);
    // Training counts three forward passes of 2 FLOPs per multiply-add (alexnet info's count).
    let gflops = report["gflops"].as_f64().unwrap();
    // conv1 32 maps of 32x32 from 3x5x5, conv2 32 of 15x15 from 32x5x5, conv3 64 of 7x7 from
    // 32x5x5, fc 576x64 and 64x10.
    let macs = 32 * 1024 * 75 + 32 * 225 * 800 + 64 * 49 * 800 + 576 * 64 + 64 * 10;
    let expected = 3.0 * 2.0 * macs as f64 * 16.0 / (step * 1e6);
    assert!(
        (gflops - expected).abs() < 1e-6 * expected,
        "{gflops} vs {expected}"
    );
    assert!(report["peak_memory_mb"].as_f64().unwrap() > 10.0);
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
