//! `alexnet report` and `alexnet neighbours` on a small real run over the committed images: the
//! page parses, every picture it shows exists at its stated size, its numbers are the run's, and
//! bad run directories are refused without leaving anything in `--out`.

mod common;
use std::path::{Path, PathBuf};

use common::*;

/// A 4-epoch run of the demo recipe whose learning rate drops after epoch 2.
fn small_run(name: &str) -> PathBuf {
    let run = temp_dir(name).join("run");
    let out = train_demo(
        &run,
        &[
            "--epochs",
            "4",
            "--set",
            "schedule.policy=\"step\"",
            "--set",
            "schedule.step_epochs=2",
        ],
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    run
}

fn attribute(tag: &tl::HTMLTag<'_>, name: &str) -> Option<String> {
    tag.attributes()
        .get(name)
        .flatten()
        .map(|value| value.as_utf8_str().into_owned())
}

fn text_of(dom: &tl::VDom<'_>, id: &str) -> String {
    let node = dom
        .get_element_by_id(id)
        .unwrap_or_else(|| panic!("the page has an element #{id}"));
    node.get(dom.parser())
        .unwrap()
        .inner_text(dom.parser())
        .into_owned()
}

#[test]
fn the_report_of_a_real_run_shows_its_numbers_and_pictures() {
    let run = small_run("report");
    let eval_json = run.with_file_name("eval.json");
    let eval = alexnet(&[
        "eval",
        run.to_str().unwrap(),
        "--quiet",
        "--json",
        eval_json.to_str().unwrap(),
    ]);
    assert!(eval.status.success(), "eval failed: {}", stderr(&eval));
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&eval_json).unwrap()).unwrap();

    let out = run.with_file_name("report");
    let report = alexnet(&[
        "report",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--examples",
        "4",
        "--k",
        "3",
        "--quiet",
    ]);
    assert!(
        report.status.success(),
        "report failed: {}",
        stderr(&report)
    );
    assert!(stdout(&report).contains("feature index built"));

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let dom = tl::parse(&html, tl::ParserOptions::default()).expect("the page parses as HTML");
    let parser = dom.parser();
    let images: Vec<_> = dom
        .query_selector("img")
        .unwrap()
        .map(|handle| handle.get(parser).unwrap().as_tag().unwrap().clone())
        .collect();
    // Curves, confusion, per-class, one conv1 grid (one tower), 4 examples with 3 neighbours each.
    assert_eq!(images.len(), 4 + 4 * (1 + 3), "{html}");
    for tag in &images {
        let src = attribute(tag, "src").expect("an img has a src");
        let picture =
            image::open(out.join(&src)).unwrap_or_else(|e| panic!("{src} does not decode: {e}"));
        let width: u32 = attribute(tag, "width").unwrap().parse().unwrap();
        let height: u32 = attribute(tag, "height").unwrap().parse().unwrap();
        assert_eq!(
            (picture.width(), picture.height()),
            (width, height),
            "{src}"
        );
        assert_eq!(
            image::ImageFormat::from_path(&src).unwrap(),
            image::ImageFormat::Png
        );
    }

    // The header's numbers are the run's metrics and `alexnet eval --json`'s.
    let m = metrics(&run);
    let last = m.last().unwrap();
    let four = |v: &serde_json::Value| format!("{:.4}", v.as_f64().unwrap());
    assert_eq!(
        text_of(&dom, "final-val-top1"),
        four(&last["val_top1_error"])
    );
    assert_eq!(
        text_of(&dom, "final-val-top5"),
        four(&last["val_top5_error"])
    );
    assert_eq!(text_of(&dom, "eval-top1"), four(&eval["top1_error"]));
    assert_eq!(text_of(&dom, "eval-top5"), four(&eval["top5_error"]));
    assert_eq!(text_of(&dom, "eval-images"), eval["images"].to_string());
    assert_eq!(text_of(&dom, "epochs-done"), "4");
    assert!(text_of(&dom, "parameters").contains("116,906"));
    // The count of neighbours sharing their image's class is the page's own tiles, counted.
    let examples: Vec<_> = dom
        .query_selector("div.example")
        .unwrap()
        .map(|handle| handle.get(parser).unwrap().inner_html(parser).into_owned())
        .collect();
    let sharing: usize = examples
        .iter()
        .map(|example| {
            let true_name = example
                .split("<figcaption>")
                .nth(1)
                .and_then(|rest| rest.split("</figcaption>").next())
                .unwrap()
                .to_string();
            example
                .split("<figcaption>")
                .skip(2)
                .filter(|caption| caption.starts_with(&format!("{true_name}<br>")))
                .count()
        })
        .sum();
    assert_eq!(text_of(&dom, "neighbours-sharing"), sharing.to_string());

    // Run again: the feature index is reused, the report replaced, no temporary left beside it.
    let again = alexnet(&[
        "report",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("feature index reused"),
        "{}",
        stdout(&again)
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".report"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_training_image_is_its_own_nearest_neighbour() {
    let run = small_run("neighbours");
    let image = fixtures().join("train/cat/0003.jpg");
    let pictures = run.with_file_name("pictures");
    let words = run.with_file_name("words.txt");
    std::fs::write(&words, "cat house cat, Felis catus\ndog a dog\n").unwrap();
    let out = alexnet(&[
        "neighbours",
        run.to_str().unwrap(),
        image.to_str().unwrap(),
        "--k",
        "2",
        "--out",
        pictures.to_str().unwrap(),
        "--synset-words",
        words.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let first = text.lines().nth(1).expect("a first neighbour");
    assert!(
        first.contains("distance     0.000")
            && first.contains("house cat ")
            && first.ends_with("train/cat/0003.jpg"),
        "{text}"
    );
    let strip = image::open(pictures.join("0003-neighbours.png")).unwrap();
    assert_eq!(strip.height(), 128 + 16);
}

/// A directory holding a run's metrics but `files` of its own.
fn broken_run(name: &str, files: &[(&str, &Path)]) -> PathBuf {
    let dir = temp_dir(name);
    for (file, from) in files {
        std::fs::copy(from, dir.join(file)).unwrap();
    }
    dir
}

#[test]
fn bad_run_directories_are_refused_in_one_line_and_leave_no_output() {
    let run = small_run("report-bad");
    let out = run.with_file_name("out");
    let refused = |dir: &Path, extra: &[&str], expected: &str| {
        let mut args = vec![
            "report",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let result = alexnet(&args);
        assert_eq!(result.status.code(), Some(1), "{}", stderr(&result));
        let message = stderr(&result);
        assert_eq!(message.trim().lines().count(), 1, "{message}");
        assert!(message.contains(expected), "{message}");
        assert!(!out.exists(), "nothing is written when the report fails");
    };
    let empty = temp_dir("report-empty");
    refused(&empty, &[], "no metrics.jsonl");
    refused(&empty.join("missing"), &[], "not a run directory");
    let metrics_only = broken_run(
        "report-metrics-only",
        &[("metrics.jsonl", &run.join("metrics.jsonl"))],
    );
    refused(&metrics_only, &[], "no checkpoint");
    // A split without images: a class folder holding nothing.
    let split = temp_dir("report-empty-split");
    for class in ["airplane", "automobile"] {
        std::fs::create_dir_all(split.join(class)).unwrap();
    }
    refused(
        &run,
        &["--data", split.to_str().unwrap()],
        split.to_str().unwrap(),
    );
    // A checkpoint whose weights are not the network its recipe describes.
    let mut checkpoint = alexnet_run::Checkpoint::load(&run.join("best.safetensors")).unwrap();
    checkpoint.recipe.model.num_classes = 5;
    let other = broken_run(
        "report-other-model",
        &[("metrics.jsonl", &run.join("metrics.jsonl"))],
    );
    checkpoint.save(&other.join("best.safetensors")).unwrap();
    refused(&other, &[], "does not fit the model");
}
