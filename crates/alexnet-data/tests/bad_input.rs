//! The bad-input corpus of issue 3, generated here: every kind of file a real collection holds, each
//! with its expected outcome: decoded correctly (colour converted, orientation applied), or skipped
//! with its path and reason. `--strict` turns the first skip into an error.

use std::path::{Path, PathBuf};

use alexnet_data::decode::load_square_patch;
use alexnet_data::shards::prepare::prepare;
use alexnet_data::{
    BadInputPolicy, DecodedSet, ImageFolder, PatchSource, PrepareOptions, ShardSet,
};
use image::{ImageEncoder, RgbImage};
use indicatif::ProgressBar;

const SIDE: usize = 32;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-corpus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn jpeg(width: u16, height: u16, colour: jpeg_encoder::ColorType, pixel: &[u8]) -> Vec<u8> {
    let data: Vec<u8> = pixel.repeat(width as usize * height as usize);
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&data, width, height, colour)
        .unwrap();
    out
}

fn rgb_jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(
            image.as_raw(),
            image.width() as u16,
            image.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    out
}

/// A 64x32 JPEG, left half red, right half blue, stored with EXIF orientation 6 ("rotate 90
/// clockwise to display"): upright it is 32x64, red on top, blue below.
fn sideways_jpeg() -> Vec<u8> {
    let image = RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    // TIFF header (little-endian), one IFD entry: tag 0x0112 Orientation, SHORT, count 1, value 6.
    let mut exif = b"Exif\0\0II\x2a\0\x08\0\0\0\x01\0".to_vec();
    exif.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    exif.extend([0, 0, 0, 0]);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    encoder.add_app_segment(1, &exif).unwrap();
    encoder
        .encode(image.as_raw(), 64, 32, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn png(width: u32, height: u32, colour: image::ExtendedColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(data, width, height, colour)
        .unwrap();
    out
}

/// An 8x8 palette PNG whose every pixel is palette entry 1 (green).
fn palette_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 8, 8);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![0, 0, 0, 10, 200, 10]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[1u8; 64]).unwrap();
    }
    out
}

/// A PNG whose header declares `width` x `height`, followed by a few bytes of pixel data: what a
/// decompression bomb looks like before it is inflated.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x63, 0x00, 0x00])
        .unwrap();
    drop(writer);
    out
}

/// A small JPEG whose frame header is patched to declare 65000x65000.
fn jpeg_bomb() -> Vec<u8> {
    let mut bytes = jpeg(16, 16, jpeg_encoder::ColorType::Rgb, &[90, 90, 90]);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("a baseline frame header");
    // SOF0: marker, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xfd, 0xe8, 0xfd, 0xe8]);
    bytes
}

/// Expected outcome of one corpus file.
enum Expect {
    /// Decoded; the patch's centre pixel is near this colour.
    Colour([u8; 3]),
    /// Decoded; a check on the whole patch.
    Check(fn(&[u8]) -> bool),
    /// Skipped, the reason containing this.
    Skipped(&'static str),
}

/// Writes the corpus into `root/things/` (and an empty `root/nothing/` class) and returns each
/// file with what should become of it.
fn write_corpus(root: &Path) -> Vec<(PathBuf, Expect)> {
    let dir = root.join("things");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(root.join("nothing")).unwrap();
    let red = rgb_jpeg(&RgbImage::from_pixel(40, 30, image::Rgb([230, 30, 30])));
    let mut rgba = Vec::new();
    for _ in 0..16 * 16 {
        rgba.extend([30u8, 30, 230, 0]); // fully transparent blue: alpha is dropped, not composited
    }
    let rgb16: Vec<u8> = [0xffffu16, 0x8000, 0x0000]
        .repeat(12 * 12)
        .iter()
        .flat_map(|v| v.to_ne_bytes()) // `image` takes 16-bit samples in native order
        .collect();
    let mut files: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("ok.jpg", red.clone(), Expect::Colour([230, 30, 30])),
        (
            "truncated.jpg",
            red[..red.len() - 40].to_vec(),
            Expect::Skipped("truncated or corrupt JPEG"),
        ),
        (
            "corrupt-header.jpg",
            [&red[..4], &b"garbage garbage garbage garbage"[..]].concat(),
            Expect::Skipped("corrupt JPEG"),
        ),
        (
            "zero.jpg",
            Vec::new(),
            Expect::Skipped("empty file (0 bytes)"),
        ),
        (
            "notes.jpg",
            b"shopping list: eggs, milk".to_vec(),
            Expect::Skipped("not an image"),
        ),
        (
            // Adobe-style CMYK: what Photoshop writes for print; C=0 M=255 Y=255 K=0 is red.
            "cmyk.jpg",
            jpeg(24, 24, jpeg_encoder::ColorType::Cmyk, &[0, 255, 255, 0]),
            Expect::Check(|p| p[0] > 180 && p[1] < 80 && p[2] < 80),
        ),
        (
            "ycck.jpg",
            jpeg(
                24,
                24,
                jpeg_encoder::ColorType::CmykAsYcck,
                &[0, 255, 255, 0],
            ),
            Expect::Check(|p| p[0] > 180 && p[1] < 80 && p[2] < 80),
        ),
        (
            "gray.jpg",
            jpeg(20, 20, jpeg_encoder::ColorType::Luma, &[77]),
            Expect::Colour([77, 77, 77]),
        ),
        (
            "gray.png",
            png(10, 10, image::ExtendedColorType::L8, &[150; 100]),
            Expect::Colour([150, 150, 150]),
        ),
        ("palette.png", palette_png(), Expect::Colour([10, 200, 10])),
        (
            "sixteen-bit.png",
            png(12, 12, image::ExtendedColorType::Rgb16, &rgb16),
            Expect::Colour([255, 128, 0]),
        ),
        (
            "rgba.png",
            png(16, 16, image::ExtendedColorType::Rgba8, &rgba),
            Expect::Colour([30, 30, 230]),
        ),
        (
            "sideways.jpg",
            sideways_jpeg(),
            // Upright, the centre square of 32x64 is rows 16..48: red above, blue below.
            Expect::Check(|p| {
                let at = |x: usize, y: usize| &p[(y * SIDE + x) * 3..(y * SIDE + x) * 3 + 3];
                at(16, 2)[0] > 180 && at(16, 2)[2] < 80 && at(16, 29)[2] > 180 && at(16, 29)[0] < 80
            }),
        ),
        (
            "tiny.png",
            png(
                3,
                2,
                image::ExtendedColorType::Rgb8,
                &[60, 70, 80].repeat(6),
            ),
            Expect::Colour([60, 70, 80]),
        ),
        (
            "bomb.png",
            png_header_only(100_000, 100_000),
            Expect::Skipped("decompression-bomb limit"),
        ),
        (
            "bomb.jpg",
            jpeg_bomb(),
            Expect::Skipped("decompression-bomb limit"),
        ),
        (
            "truncated.png",
            {
                let whole = png(16, 16, image::ExtendedColorType::Rgba8, &rgba);
                whole[..whole.len() - 30].to_vec()
            },
            Expect::Skipped("truncated or corrupt PNG"),
        ),
    ];
    let mut out: Vec<(PathBuf, Expect)> = files
        .drain(..)
        .map(|(name, bytes, expect)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            (path, expect)
        })
        .collect();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // A Latin-1 file name, not valid UTF-8.
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
        let path = dir.join(name);
        std::fs::write(&path, &red).unwrap();
        out.push((path, Expect::Colour([230, 30, 30])));
        // A link to nothing: listed like a file, unreadable.
        let path = dir.join("gone.jpg");
        std::os::unix::fs::symlink(root.join("no-such-file.jpg"), &path).unwrap();
        out.push((path, Expect::Skipped("cannot read")));
        // A file its owner may not read: only where permissions bind (not for root).
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("locked.jpg");
        std::fs::write(&path, &red).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::File::open(&path).is_err() {
            out.push((path, Expect::Skipped("Permission denied")));
        } else {
            out.push((path, Expect::Colour([230, 30, 30])));
        }
    }
    out
}

fn near(patch: &[u8], colour: [u8; 3]) -> bool {
    let centre = (SIDE / 2 * SIDE + SIDE / 2) * 3;
    (0..3).all(|c| (patch[centre + c] as i32 - colour[c] as i32).abs() <= 6)
}

#[test]
fn every_file_is_decoded_correctly_or_skipped_with_its_reason() {
    let root = temp_dir("decode");
    let corpus = write_corpus(&root);
    // Each file alone.
    for (path, expect) in &corpus {
        let result = load_square_patch(path, SIDE);
        match (expect, result) {
            (Expect::Colour(colour), Ok(patch)) => {
                assert!(
                    near(&patch, *colour),
                    "{}: centre {:?}",
                    path.display(),
                    &patch[(SIDE / 2 * SIDE + SIDE / 2) * 3..][..3]
                );
            }
            (Expect::Check(check), Ok(patch)) => assert!(check(&patch), "{}", path.display()),
            (Expect::Skipped(reason), Err(error)) => {
                let message = error.to_string();
                assert!(
                    message.contains(reason)
                        && message.contains(&*path.file_name().unwrap().to_string_lossy()),
                    "{}: {message}",
                    path.display()
                );
            }
            (_, Ok(_)) => panic!("{} decoded but should be skipped", path.display()),
            (_, Err(e)) => panic!("{} should decode: {e}", path.display()),
        }
    }

    // The whole folder: the good ones kept in order, the bad ones reported, the empty class too.
    let folder = ImageFolder::scan(&root).unwrap();
    assert_eq!(folder.class_names, vec!["nothing", "things"]);
    let set =
        DecodedSet::load(&folder, SIDE, &ProgressBar::hidden(), BadInputPolicy::Skip).unwrap();
    let good = corpus
        .iter()
        .filter(|(_, e)| !matches!(e, Expect::Skipped(_)))
        .count();
    let bad = corpus.len() - good;
    assert_eq!(set.len(), good);
    assert_eq!(
        set.skipped().len(),
        bad + 1,
        "bad files and the empty class"
    );
    assert!(
        set.skipped()
            .iter()
            .any(|s| s.path.ends_with("nothing") && s.reason.contains("empty class"))
    );
    for path in &set.paths {
        let expect = &corpus.iter().find(|(p, _)| p == path).unwrap().1;
        assert!(
            !matches!(expect, Expect::Skipped(_)),
            "{} kept",
            path.display()
        );
    }

    // Strict: the first bad thing is the error.
    let err = DecodedSet::load(
        &folder,
        SIDE,
        &ProgressBar::hidden(),
        BadInputPolicy::Strict,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("nothing") && err.contains("no images"),
        "{err}"
    );
}

#[test]
fn prepare_reports_the_corpus_and_strict_refuses_it() {
    let base = temp_dir("prepare");
    let root = base.join("corpus");
    let corpus = write_corpus(&root);
    let out = base.join("out");
    let options = PrepareOptions {
        side: Some(SIDE),
        shard_size: 4,
        ..PrepareOptions::default()
    };
    let summary = prepare(&root, &out, &options, &ProgressBar::hidden()).unwrap();
    let good = corpus
        .iter()
        .filter(|(_, e)| !matches!(e, Expect::Skipped(_)))
        .count();
    assert_eq!(summary.splits.len(), 1);
    assert_eq!(summary.splits[0].images, good);
    assert_eq!(summary.splits[0].skipped.len(), corpus.len() - good + 1);
    let report = std::fs::read_to_string(out.join("skipped.tsv")).unwrap();
    assert_eq!(
        report.lines().count(),
        1 + corpus.len() - good + 1,
        "{report}"
    );
    assert!(
        report.contains("zero.jpg\tempty file (0 bytes)"),
        "{report}"
    );
    // The non-UTF-8 name is a good image: decoded, not reported.
    assert!(!report.contains("caf"), "{report}");
    if std::env::var_os("ALEXNET_SHOW_REPORT").is_some() {
        println!("{report}");
    }
    // The shards hold the good ones, with their source names (non-UTF-8 written lossily).
    let set = ShardSet::open(&out, "train").unwrap();
    assert_eq!(set.len(), good);
    if cfg!(unix) {
        assert!((0..set.len()).any(|i| set.name(i).contains("caf\u{fffd}.jpg")));
    }

    let strict = PrepareOptions {
        policy: BadInputPolicy::Strict,
        ..options
    };
    let err = prepare(&root, &base.join("strict"), &strict, &ProgressBar::hidden())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nothing") && err.contains("empty class folder"),
        "{err}"
    );
}
