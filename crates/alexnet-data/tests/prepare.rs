//! `prepare` end to end on data sets the tests make: every format read back exactly from the
//! shards, statistics equal to a direct computation, an interrupted run completed without redoing
//! finished shards, and the loader giving the same batches from shards as from memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alexnet_data::shards::prepare::prepare;
use alexnet_data::{
    BadInputPolicy, BatchLoader, DataFormat, DatasetStats, DecodedSet, ImageFolder, Manifest,
    PatchEncoding, PatchSource, PrepareOptions, ShardSet, Shuffle, ViewPlan,
};
use image::RgbImage;
use indicatif::ProgressBar;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-prepare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pixel `(x, y)` of image `k`: distinct everywhere, so a swapped image or a shifted row shows.
fn pixel(k: usize, x: usize, y: usize) -> [u8; 3] {
    [
        (k * 37 + x * 11 + y) as u8,
        (k * 5 + y * 13 + x) as u8,
        (k * 91 + x * y) as u8,
    ]
}

/// `src/<split>/<class>/<k>.png`: 8x8 PNGs (lossless, already square: stored as they are).
fn image_folder(src: &Path, per_class: &[(&str, &str, usize)]) -> Vec<(String, String, usize)> {
    let mut made = Vec::new();
    let mut k = 0;
    for &(split, class, count) in per_class {
        let dir = src.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..count {
            let image =
                RgbImage::from_fn(8, 8, |x, y| image::Rgb(pixel(k, x as usize, y as usize)));
            image.save(dir.join(format!("{i:03}.png"))).unwrap();
            made.push((split.to_string(), class.to_string(), k));
            k += 1;
        }
    }
    made
}

/// An image folder of `per_class` images prepared at side 8 into shards of `shard_size`: its
/// source, the prepared directory and the options used.
fn prepared_folder(
    name: &str,
    per_class: &[(&str, &str, usize)],
    shard_size: usize,
) -> (PathBuf, PathBuf, PrepareOptions) {
    let base = temp_dir(name);
    let src = base.join("src");
    image_folder(&src, per_class);
    let out = base.join("out");
    let options = PrepareOptions {
        side: Some(8),
        shard_size,
        ..PrepareOptions::default()
    };
    prepare(&src, &out, &options, &ProgressBar::hidden()).unwrap();
    (src, out, options)
}

fn all_patches(set: &dyn PatchSource) -> Vec<Vec<u8>> {
    (0..set.len())
        .map(|i| set.patch(i).unwrap().into_owned())
        .collect()
}

#[test]
fn an_image_folder_reads_back_exactly_with_its_statistics() {
    let base = temp_dir("folder");
    let src = base.join("src");
    image_folder(
        &src,
        &[
            ("train", "ant", 5),
            ("train", "bee", 4),
            ("val", "ant", 2),
            ("val", "bee", 3),
        ],
    );
    let out = base.join("out");
    let options = PrepareOptions {
        side: Some(8),
        shard_size: 3,
        ..PrepareOptions::default()
    };
    let summary = prepare(&src, &out, &options, &ProgressBar::hidden()).unwrap();
    assert_eq!(summary.format, DataFormat::ImageFolder);
    assert_eq!(summary.class_names, vec!["ant", "bee"]);
    let train = summary.splits.iter().find(|s| s.name == "train").unwrap();
    assert_eq!(
        (train.images, train.per_class.clone(), train.shards_written),
        (9, vec![5, 4], 3)
    );

    let manifest = Manifest::read(&out).unwrap();
    assert_eq!(manifest.splits["val"].images, 5);
    assert_eq!(manifest.stats_split, "train");
    for split in ["train", "val"] {
        let direct = DecodedSet::load(
            &ImageFolder::scan(&src.join(split)).unwrap(),
            8,
            &ProgressBar::hidden(),
            BadInputPolicy::Strict,
        )
        .unwrap();
        let shards = ShardSet::open(&out, split).unwrap();
        assert_eq!(all_patches(&shards), all_patches(&direct), "{split} pixels");
        assert_eq!(
            (0..shards.len())
                .map(|i| shards.label(i))
                .collect::<Vec<_>>(),
            direct.labels
        );
        assert!(
            shards.name(0).ends_with("ant/000.png"),
            "{}",
            shards.name(0)
        );
        if split == "train" {
            // The statistics written beside the shards are those of the training images.
            let expected = DatasetStats::compute(&direct).unwrap();
            assert_eq!(DatasetStats::read(&out).unwrap(), expected);
        }
    }
    let err = ShardSet::open(&out, "test").err().unwrap().to_string();
    assert!(err.contains("no split \"test\""), "{err}");
}

#[test]
fn an_interrupted_prepare_is_completed_without_redoing_finished_shards() {
    let (src, out, options) = prepared_folder("resume", &[("train", "a", 7), ("train", "b", 6)], 3);
    let first = all_patches(&ShardSet::open(&out, "train").unwrap());
    let shard = |k: usize| out.join(format!("train/shard-{k:05}.ash"));
    let modified = |k: usize| std::fs::metadata(shard(k)).unwrap().modified().unwrap();
    let kept_time = modified(0);

    // What a kill leaves: no manifest, a shard never renamed (only its .tmp), a torn final file.
    std::fs::remove_file(out.join("dataset.json")).unwrap();
    std::fs::rename(shard(2), out.join("train/shard-00002.ash.tmp")).unwrap();
    let torn = std::fs::read(shard(4)).unwrap();
    std::fs::write(shard(4), &torn[..torn.len() / 2]).unwrap();
    assert!(
        ShardSet::open(&out, "train").is_err(),
        "unfinished: refused"
    );

    let summary = prepare(&src, &out, &options, &ProgressBar::hidden()).unwrap();
    assert_eq!(summary.splits[0].shards_written, 2);
    assert_eq!(summary.splits[0].shards_kept, 3);
    assert_eq!(modified(0), kept_time, "a finished shard is not rewritten");
    assert!(!out.join("train/shard-00002.ash.tmp").exists());
    assert_eq!(all_patches(&ShardSet::open(&out, "train").unwrap()), first);

    // Other settings make other shards: nothing is kept.
    let bigger = PrepareOptions {
        side: Some(16),
        ..options.clone()
    };
    let summary = prepare(&src, &out, &bigger, &ProgressBar::hidden()).unwrap();
    assert_eq!(
        (
            summary.splits[0].shards_written,
            summary.splits[0].shards_kept
        ),
        (5, 0)
    );
    assert_eq!(ShardSet::open(&out, "train").unwrap().side, 16);
    // Fewer shards than before: the extra old ones are removed.
    let fewer = PrepareOptions {
        shard_size: 10,
        ..bigger
    };
    prepare(&src, &out, &fewer, &ProgressBar::hidden()).unwrap();
    assert!(!shard(2).exists());
    assert_eq!(ShardSet::open(&out, "train").unwrap().len(), 13);
}

#[test]
fn cifar_and_idx_binaries_read_back_exactly() {
    // CIFAR-10: five training batches and a test batch of 2 records each; label byte then planes.
    let base = temp_dir("binary");
    let cifar = base.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    let record = |k: usize| -> Vec<u8> {
        let mut r = vec![(k % 10) as u8];
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    r.push(pixel(k, x, y)[c]);
                }
            }
        }
        r
    };
    for (file, first) in [
        ("data_batch_1.bin", 0),
        ("data_batch_2.bin", 2),
        ("data_batch_3.bin", 4),
        ("data_batch_4.bin", 6),
        ("data_batch_5.bin", 8),
        ("test_batch.bin", 10),
    ] {
        std::fs::write(
            cifar.join(file),
            [record(first), record(first + 1)].concat(),
        )
        .unwrap();
    }
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    std::fs::write(cifar.join("batches.meta.txt"), names).unwrap();
    let out = base.join("cifar-out");
    let summary = prepare(
        &cifar,
        &out,
        &PrepareOptions::default(),
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!(
        (summary.format, summary.side),
        (DataFormat::Cifar, 32),
        "detected, native side"
    );
    let train = ShardSet::open(&out, "train").unwrap();
    assert_eq!(train.len(), 10);
    assert_eq!(train.class_names[9], "truck");
    for k in 0..10 {
        assert_eq!(train.label(k), k % 10);
        let patch = train.patch(k).unwrap();
        assert_eq!(
            &patch[(5 * 32 + 7) * 3..][..3],
            &pixel(k, 7, 5),
            "image {k}"
        );
    }
    assert_eq!(ShardSet::open(&out, "test").unwrap().label(1), 1);

    // IDX (gzip): 3 images of 4x4 and their labels; grey becomes RGB.
    let idx = base.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    let write_gz = |name: &str, bytes: &[u8]| {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(bytes).unwrap();
        std::fs::write(idx.join(name), z.finish().unwrap()).unwrap();
    };
    let images: Vec<u8> = [
        &[0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4][..],
        &(0..48).collect::<Vec<u8>>(),
    ]
    .concat();
    let labels = [0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1];
    for split in ["train", "t10k"] {
        write_gz(&format!("{split}-images-idx3-ubyte.gz"), &images);
        write_gz(&format!("{split}-labels-idx1-ubyte.gz"), &labels);
    }
    let out = base.join("idx-out");
    let summary = prepare(
        &idx,
        &out,
        &PrepareOptions::default(),
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!((summary.format, summary.side), (DataFormat::Idx, 4));
    let train = ShardSet::open(&out, "train").unwrap();
    assert_eq!(
        (0..3).map(|i| train.label(i)).collect::<Vec<_>>(),
        vec![2, 0, 1]
    );
    assert_eq!(&train.patch(1).unwrap()[..6], &[16, 16, 16, 17, 17, 17]);
}

#[test]
fn shards_give_the_same_seeded_batches_as_memory_and_jpeg_shards_are_close() {
    let base = temp_dir("loader");
    let src = base.join("src");
    image_folder(&src, &[("train", "x", 6), ("train", "y", 5)]);
    let out = base.join("out");
    let options = PrepareOptions {
        side: Some(8),
        shard_size: 4,
        ..PrepareOptions::default()
    };
    prepare(&src, &out, &options, &ProgressBar::hidden()).unwrap();
    let memory: Arc<dyn PatchSource> = Arc::new(
        DecodedSet::load(
            &ImageFolder::scan(&src.join("train")).unwrap(),
            8,
            &ProgressBar::hidden(),
            BadInputPolicy::Strict,
        )
        .unwrap(),
    );
    let shards: Arc<dyn PatchSource> = Arc::new(ShardSet::open(&out, "train").unwrap());
    let stats = Arc::new(DatasetStats::read(&out).unwrap());
    let plan = ViewPlan::Train {
        flip: true,
        pca_sigma: 0.1,
    };
    let batches = |set: Arc<dyn PatchSource>, seed: u64| {
        BatchLoader::new(set, stats.clone(), 6, 4, plan, seed)
            .unwrap()
            .epoch(2, 0)
            .into_iter()
            .map(Result::unwrap)
            .map(|b| (b.indices, b.images))
            .collect::<Vec<_>>()
    };
    let from_shards = batches(shards.clone(), 7);
    assert_eq!(from_shards.len(), 3);
    assert_eq!(from_shards, batches(memory, 7), "shards and memory agree");
    assert_eq!(
        from_shards,
        batches(shards.clone(), 7),
        "seeded: repeatable"
    );
    assert_ne!(
        from_shards,
        batches(shards, 8),
        "another seed, other batches"
    );

    let jpeg_out = base.join("jpeg");
    let jpeg = PrepareOptions {
        encoding: PatchEncoding::Jpeg(95),
        ..options
    };
    prepare(&src, &jpeg_out, &jpeg, &ProgressBar::hidden()).unwrap();
    let raw = all_patches(&ShardSet::open(&out, "train").unwrap());
    let lossy = all_patches(&ShardSet::open(&jpeg_out, "train").unwrap());
    let error: f64 = raw
        .concat()
        .iter()
        .zip(lossy.concat())
        .map(|(&a, b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / raw.concat().len() as f64;
    // These 8x8 test patterns are JPEG's worst case (no smooth areas); photographs do far better.
    assert!(error > 0.0 && error < 12.0, "mean abs error {error}");
}

#[test]
fn the_ilsvrc_layout_is_detected_and_its_flat_val_labelled() {
    let base = temp_dir("ilsvrc");
    let src = base.join("ILSVRC");
    let wnids = ["n01440764", "n01443537", "n02102040"];
    let mut k = 0;
    for wnid in wnids {
        let dir = src.join("train").join(wnid);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..2 {
            let image =
                RgbImage::from_fn(12, 9, |x, y| image::Rgb(pixel(k, x as usize, y as usize)));
            image.save(dir.join(format!("{wnid}_{i}.JPEG"))).unwrap();
            k += 1;
        }
    }
    std::fs::create_dir_all(src.join("val")).unwrap();
    for i in 1..=3 {
        let image = RgbImage::from_fn(9, 12, |x, y| image::Rgb(pixel(i, x as usize, y as usize)));
        image
            .save_with_format(
                src.join("val").join(format!("ILSVRC2012_val_{i:08}.JPEG")),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
    }
    std::fs::write(
        src.join("LOC_val_solution.csv"),
        "ImageId,PredictionString\nILSVRC2012_val_00000001,n02102040 1 1 5 5\n\
         ILSVRC2012_val_00000002,n01440764 0 0 3 3\nILSVRC2012_val_00000003,n01443537 2 2 4 4\n",
    )
    .unwrap();
    std::fs::write(
        src.join("LOC_synset_mapping.txt"),
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\nn02102040 English springer\n",
    )
    .unwrap();
    let out = base.join("out");
    let options = PrepareOptions {
        side: Some(8),
        ..PrepareOptions::default()
    };
    let summary = prepare(&src, &out, &options, &ProgressBar::hidden()).unwrap();
    assert_eq!(summary.format, DataFormat::Ilsvrc);
    let manifest = Manifest::read(&out).unwrap();
    assert_eq!(manifest.class_names, wnids);
    assert_eq!(
        manifest.class_descriptions[1],
        "goldfish, Carassius auratus"
    );
    assert_eq!(manifest.splits["train"].per_class, vec![2, 2, 2]);
    let val = ShardSet::open(&out, "val").unwrap();
    assert_eq!(
        (0..3).map(|i| val.label(i)).collect::<Vec<_>>(),
        vec![2, 0, 1]
    );
    assert_eq!(val.name(0), "val/ILSVRC2012_val_00000001.JPEG");
    assert_eq!(val.patch(0).unwrap().len(), 8 * 8 * 3);
}

#[test]
fn the_shard_shuffle_reads_each_shard_in_one_window_and_every_image_once() {
    let (_, out, _) = prepared_folder(
        "shard-shuffle",
        &[("train", "x", 12), ("train", "y", 11)],
        4,
    );
    let shards = Arc::new(ShardSet::open(&out, "train").unwrap());
    // 23 images in shards of 4: six runs of indices, the last of 3.
    let blocks = shards.blocks();
    assert_eq!(blocks.len(), 6);
    assert_eq!(blocks[0], 0..4);
    assert_eq!(blocks[5], 20..23);
    let stats = Arc::new(DatasetStats::read(&out).unwrap());
    let plan = ViewPlan::Train {
        flip: true,
        pca_sigma: 0.1,
    };
    let loader = |seed: u64, rank: usize, world_size: usize| {
        let mut loader = BatchLoader::new(shards.clone(), stats.clone(), 6, 4, plan, seed).unwrap();
        loader.shuffle = Shuffle::Shards;
        loader.shuffle_window = 2;
        (loader.rank, loader.world_size) = (rank, world_size);
        loader
    };
    let epoch = |seed: u64, epoch: usize, rank: usize, world_size: usize| {
        loader(seed, rank, world_size)
            .epoch(epoch, 0)
            .into_iter()
            .map(Result::unwrap)
            .map(|b| (b.indices, b.images))
            .collect::<Vec<_>>()
    };
    let first = epoch(3, 0, 0, 1);
    let order: Vec<usize> = first.iter().flat_map(|(i, _)| i.clone()).collect();
    let mut seen = order.clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..23).collect::<Vec<_>>(), "every image once");
    // Windows of two shards (three windows): each window's stretch of the epoch holds exactly
    // the images of its two shards.
    let planned = loader(3, 0, 1).order(0);
    assert_eq!(planned.indices, order);
    assert_eq!(planned.windows.len(), 3);
    for window in &planned.windows {
        let mut images = order[window.positions.clone()].to_vec();
        images.sort_unstable();
        let mut expected: Vec<usize> = window
            .blocks
            .iter()
            .flat_map(|&b| blocks[b].clone())
            .collect();
        expected.sort_unstable();
        assert_eq!(images, expected, "{order:?}");
    }
    assert_eq!(epoch(3, 0, 0, 1), first, "repeatable from the seed");
    assert_ne!(epoch(3, 1, 0, 1), first, "each epoch its own order");
    // Two ranks' shares make up each batch of the one-process epoch, views included.
    let (zero, one) = (epoch(3, 0, 0, 2), epoch(3, 0, 1, 2));
    for ((whole, a), b) in first.iter().zip(&zero).zip(&one) {
        assert_eq!([a.0.clone(), b.0.clone()].concat(), whole.0);
        assert_eq!([a.1.clone(), b.1.clone()].concat(), whole.1);
    }
}
