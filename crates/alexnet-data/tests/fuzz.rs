//! Every parser of outside data on the data side, fed mutations of real files of its format
//! (truncated, bits flipped, declared sizes grown, bytes inserted and deleted): each returns a
//! value or an error, and never panics, hangs or allocates without bound (this binary's
//! allocator refuses any single request over 1 GiB). `ALEXNET_FUZZ_SECONDS=600` is the long run.

use std::path::{Path, PathBuf};

use alexnet_data::formats::mat5::writer::{Field, struct_array};
use alexnet_data::formats::{cifar, idx, ilsvrc, mat5};
use alexnet_data::mutate::{CappedAllocator, fuzz};
use alexnet_data::shards::set::SplitEntry;
use alexnet_data::shards::{PatchEncoding, Shard, ShardWriter};
use alexnet_data::{Manifest, PatchSource, ShardSet, read_metadata, read_tensors, write_tensors};

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IDX file: magic (0, 0, type 8 = u8, rank), big-endian dimensions, data.
fn idx_file(dims: &[u32], fill: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    let count: u32 = dims.iter().product();
    bytes.extend((0..count as usize).map(fill));
    bytes
}

#[test]
fn idx_files() {
    let dir = temp_dir("idx");
    let images = idx_file(&[3, 4, 4], |i| (i * 7) as u8);
    let labels = idx_file(&[3], |i| i as u8);
    // The real Fashion-MNIST labels as a seed too, when Debian's package is installed.
    let mut seeds = vec![images.clone(), labels.clone()];
    let real = Path::new("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    if let Ok(gz) = std::fs::read(real) {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        seeds.push(raw);
    }
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let ran = fuzz("idx", &seeds, |bytes| {
        let path = dir.join("t10k-images-idx3-ubyte");
        std::fs::write(&path, bytes).unwrap();
        let _ = idx::read_idx(&path);
        let _ = idx::load(&dir, false);
    });
    println!("idx: {ran} inputs");
}

#[test]
fn cifar_binaries() {
    let dir = temp_dir("cifar");
    let record = |k: usize| -> Vec<u8> {
        let mut r = vec![(k % 10) as u8];
        r.extend((0..3072).map(|i| ((i * 31 + k) % 256) as u8));
        r
    };
    let batch: Vec<u8> = (0..3).flat_map(record).collect();
    std::fs::write(dir.join("batches.meta.txt"), "airplane\nautomobile\nbird\n").unwrap();
    let ran = fuzz("cifar", &[batch], |bytes| {
        std::fs::write(dir.join("test_batch.bin"), bytes).unwrap();
        if let Ok(set) = cifar::load(&dir, false) {
            for i in 0..set.len() {
                let _ = set.patch(i);
                let _ = set.label(i);
            }
        }
    });
    println!("cifar: {ran} inputs");
}

/// A shard of three 4x4 patches, raw or JPEG, as `prepare` writes it.
fn shard_bytes(dir: &Path, encoding: PatchEncoding) -> Vec<u8> {
    let path = dir.join("seed.ash");
    let mut writer = ShardWriter::create(&path, 4, encoding, "plan".into()).unwrap();
    for k in 0..3 {
        let patch: Vec<u8> = (0..48).map(|i| (i * 5 + k * 40) as u8).collect();
        writer.push(&patch, k, format!("image-{k}.jpg")).unwrap();
    }
    writer.finish().unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn shards_and_their_manifest() {
    let dir = temp_dir("shard");
    let seeds = [
        shard_bytes(&dir, PatchEncoding::Raw),
        shard_bytes(&dir, PatchEncoding::Jpeg(90)),
    ];
    let ran = fuzz("shard", &seeds, |bytes| {
        let path = dir.join("fuzzed.ash");
        std::fs::write(&path, bytes).unwrap();
        if let Ok(shard) = Shard::open(&path) {
            for i in 0..shard.len() {
                let _ = shard.patch(i);
            }
        }
    });
    println!("shard: {ran} inputs");

    // dataset.json, the manifest prepare writes last, over a real shard.
    std::fs::create_dir_all(dir.join("train")).unwrap();
    std::fs::write(dir.join("train/shard-00000.ash"), &seeds[0]).unwrap();
    let manifest = Manifest {
        format: "alexnet-shards-1".into(),
        side: 4,
        encoding: PatchEncoding::Raw,
        source: "fuzz".into(),
        source_format: "image-folder".into(),
        class_names: vec!["a".into(), "b".into(), "c".into()],
        class_descriptions: vec![String::new(); 3],
        splits: [(
            "train".to_string(),
            SplitEntry {
                images: 3,
                skipped: 0,
                per_class: vec![1, 1, 1],
                shards: vec!["train/shard-00000.ash".into()],
            },
        )]
        .into(),
        stats_split: "train".into(),
    };
    let text = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(dir.join("dataset.json"), &text).unwrap();
    let whole = ShardSet::open(&dir, "train").expect("the seed manifest is valid");
    assert_eq!(whole.len(), 3);
    let ran = fuzz("manifest", &[text], |bytes| {
        std::fs::write(dir.join("dataset.json"), bytes).unwrap();
        let _ = Manifest::read(&dir);
        if let Ok(set) = ShardSet::open(&dir, "train") {
            for i in 0..set.len() {
                let _ = set.patch(i);
                let _ = set.label(i);
            }
        }
    });
    println!("manifest: {ran} inputs");
}

#[test]
fn safetensors_files_of_the_data_side() {
    let dir = temp_dir("tensors");
    let path = dir.join("stats.safetensors");
    let (mean, eigen) = (vec![1.5f32; 48], vec![0.5f32, 0.25, 0.125]);
    write_tensors(
        &path,
        &[
            ("mean_image".into(), &[3, 4, 4], &mean),
            ("eigenvalues".into(), &[3], &eigen),
        ],
        [("format".to_string(), "stats".to_string())].into(),
    )
    .unwrap();
    let seed = std::fs::read(&path).unwrap();
    let ran = fuzz("safetensors", &[seed], |bytes| {
        let fuzzed = dir.join("fuzzed.safetensors");
        std::fs::write(&fuzzed, bytes).unwrap();
        let _ = read_tensors(&fuzzed);
        let _ = read_metadata(&fuzzed);
    });
    println!("safetensors: {ran} inputs");
}

/// An ILSVRC-2012 layout of three classes and four validation images, labelled by `labels`.
fn ilsvrc_layout(name: &str) -> PathBuf {
    let src = temp_dir(name);
    for wnid in ["n01440764", "n01443537", "n02102040"] {
        let class = src.join("train").join(wnid);
        std::fs::create_dir_all(&class).unwrap();
        std::fs::write(class.join(format!("{wnid}_1.JPEG")), b"x").unwrap();
    }
    std::fs::create_dir_all(src.join("val")).unwrap();
    for i in 1..=4 {
        std::fs::write(
            src.join("val").join(format!("ILSVRC2012_val_{i:08}.JPEG")),
            b"x",
        )
        .unwrap();
    }
    src
}

#[test]
fn ilsvrc_solution_csv_and_synset_mapping() {
    let src = ilsvrc_layout("ilsvrc-csv");
    let csv = "ImageId,PredictionString\nILSVRC2012_val_00000001,n02102040 1 1 5 5\n\
               ILSVRC2012_val_00000002,n01440764 0 0 3 3 n01440764 1 1 2 2\n\
               ILSVRC2012_val_00000003,n01443537 2 2 4 4\nILSVRC2012_val_00000004,n01440764 0 0 1 1\n";
    let words = "n01440764 tench, Tinca tinca\nn01443537 goldfish\nn02102040 English springer\n";
    std::fs::write(src.join("LOC_synset_mapping.txt"), words).unwrap();
    let ran = fuzz("ilsvrc-csv", &[csv.as_bytes().to_vec()], |bytes| {
        std::fs::write(src.join("LOC_val_solution.csv"), bytes).unwrap();
        let _ = ilsvrc::scan(&src);
    });
    println!("ilsvrc-csv: {ran} inputs");
    let ran = fuzz("synset-words", &[words.as_bytes().to_vec()], |bytes| {
        std::fs::write(src.join("LOC_synset_mapping.txt"), bytes).unwrap();
        let _ = ilsvrc::read_synset_words(&src.join("LOC_synset_mapping.txt"));
        let _ = ilsvrc::scan(&src);
    });
    println!("synset-words: {ran} inputs");
}

fn meta_mat(compress: bool) -> Vec<u8> {
    let rows = vec![
        vec![Field::Number(1.0), Field::Text("n02102040".into())],
        vec![Field::Number(2.0), Field::Text("n01440764".into())],
        vec![Field::Number(3.0), Field::Text("n01443537".into())],
    ];
    struct_array("synsets", &["ILSVRC2012_ID", "WNID"], &rows, compress)
}

#[test]
fn devkit_ground_truth_and_meta_mat() {
    let src = ilsvrc_layout("ilsvrc-devkit");
    let devkit = src.join("ILSVRC2012_devkit_t12/data");
    std::fs::create_dir_all(&devkit).unwrap();
    std::fs::write(devkit.join("meta.mat"), meta_mat(true)).unwrap();
    let truth = "1\n2\n3\n2\n";
    let ran = fuzz(
        "ilsvrc-ground-truth",
        &[truth.as_bytes().to_vec()],
        |bytes| {
            std::fs::write(devkit.join("ILSVRC2012_validation_ground_truth.txt"), bytes).unwrap();
            let _ = ilsvrc::scan(&src);
        },
    );
    println!("ilsvrc-ground-truth: {ran} inputs");

    std::fs::write(devkit.join("ILSVRC2012_validation_ground_truth.txt"), truth).unwrap();
    let ran = fuzz("mat5", &[meta_mat(true), meta_mat(false)], |bytes| {
        let _ = mat5::read_variables(bytes);
        std::fs::write(devkit.join("meta.mat"), bytes).unwrap();
        let _ = ilsvrc::scan(&src);
    });
    println!("mat5: {ran} inputs");
}
