//! Seeded mutations of real files, and the harness that feeds them to a parser: what the property
//! tests of every parser of outside data use (IDX, CIFAR, shards, safetensors, recipes, ILSVRC's
//! CSV and ground truth, MAT v5). The property: on any input a parser returns `Ok` or an error,
//! and never panics, hangs or asks for unbounded memory. The program itself does not use this.
//!
//! A mutation is one to four of: truncation, bit flips, a 4- or 8-byte field overwritten with a
//! large or boundary value (a declared size grown), bytes inserted, a range deleted or repeated.
//! `ALEXNET_FUZZ_CASES` sets the cases per parser (CI's default: [`DEFAULT_CASES`]);
//! `ALEXNET_FUZZ_SECONDS` runs each parser that long instead (the long mode). An input that makes
//! a parser panic is saved under `target/fuzz-failures/` to become a regression file in
//! `fixtures/fuzz/<parser>/`, which every run replays first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cases per parser when the environment does not say.
pub const DEFAULT_CASES: usize = 300;

/// One case may take this long before the harness takes it for a hang and aborts.
const CASE_DEADLINE: Duration = Duration::from_secs(20);

/// The largest single allocation [`CappedAllocator`] grants: far above what any valid test file
/// needs, far below what a size field grown to 2^32 or 2^64 would ask for.
pub const ALLOCATION_CAP: usize = 1 << 30;

/// A global allocator for fuzz test binaries: the system's, refusing any single allocation over
/// [`ALLOCATION_CAP`] (the process then aborts with "memory allocation of N bytes failed", so a
/// parser that trusts a declared size is caught, not merely slow).
pub struct CappedAllocator;

// SAFETY: every call is forwarded to `System` unchanged, except that too large a request is
// answered with null, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as `System` requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` and `layout` as `System` gave them.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Values a size or count field is overwritten with.
const BOUNDARY_VALUES: [u64; 8] = [
    0,
    1,
    0x7f,
    0xff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// `original` with one to four seeded mutations.
pub fn mutate(original: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = bytes.len();
        match rng.random_range(0..6) {
            0 => bytes.truncate(rng.random_range(0..=len)),
            1 if len > 0 => {
                for _ in 0..rng.random_range(1..=8) {
                    let at = rng.random_range(0..len);
                    bytes[at] ^= 1 << rng.random_range(0..8);
                }
            }
            2 if len >= 8 => {
                let width = if rng.random_bool(0.5) { 4 } else { 8 };
                let at = rng.random_range(0..=len - width) & !(width - 1);
                let value = if rng.random_bool(0.7) {
                    BOUNDARY_VALUES[rng.random_range(0..BOUNDARY_VALUES.len())]
                } else {
                    rng.random()
                };
                bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            3 => {
                let at = rng.random_range(0..=len);
                let count = rng.random_range(1..=16);
                let inserted: Vec<u8> = (0..count).map(|_| rng.random()).collect();
                bytes.splice(at..at, inserted);
            }
            4 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = rng.random_range(start..=len.min(start + 64));
                bytes.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = rng.random_range(start..=len.min(start + 64));
                let copy = bytes[start..end].to_vec();
                let at = rng.random_range(0..=len);
                bytes.splice(at..at, copy);
            }
            _ => {}
        }
    }
    bytes
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Where the regression inputs of `parser` are kept in the repository.
pub fn regression_dir(parser: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/fuzz")
        .join(parser)
}

/// Feeds `parse` the regression inputs of `parser`, then mutations of `seeds` (real files of the
/// format): `ALEXNET_FUZZ_CASES` of them, or as many as `ALEXNET_FUZZ_SECONDS` allow. A panic
/// saves its input and fails the test naming it; a case running past its deadline aborts the
/// process, saying which. Returns how many inputs were run.
pub fn fuzz(parser: &str, seeds: &[Vec<u8>], parse: impl Fn(&[u8])) -> usize {
    assert!(!seeds.is_empty(), "{parser}: no seed files");
    // When the running case started (ms since `epoch`, 0 between cases, MAX when done).
    let case_started = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let watched = parser.to_string();
    let watched_case = Arc::clone(&case_started);
    let watchdog = std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let started = watched_case.load(Ordering::Relaxed);
            if started == u64::MAX {
                return;
            }
            let now = epoch.elapsed().as_millis() as u64;
            if started > 0 && now.saturating_sub(started) > CASE_DEADLINE.as_millis() as u64 {
                eprintln!("{watched}: a case has run for over {CASE_DEADLINE:?}: a hang");
                std::process::abort();
            }
        }
    });
    let run_one = |name: &str, bytes: &[u8]| {
        case_started.store(epoch.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(bytes)));
        case_started.store(0, Ordering::Relaxed);
        if outcome.is_err() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let saved = dir.join(format!("{parser}-{name}.bin"));
            let _ = std::fs::write(&saved, bytes);
            panic!(
                "{parser}: input {name} made the parser panic; saved as {}",
                saved.display()
            );
        }
    };

    let mut ran = 0;
    if let Ok(entries) = std::fs::read_dir(regression_dir(parser)) {
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).expect("a regression file reads");
            run_one(&file.display().to_string(), &bytes);
            ran += 1;
        }
    }
    let seconds = env_number("ALEXNET_FUZZ_SECONDS");
    let cases = env_number("ALEXNET_FUZZ_CASES").unwrap_or(DEFAULT_CASES as u64);
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(env_number("ALEXNET_FUZZ_SEED").unwrap_or(0));
    for case in 0.. {
        let done = match seconds {
            Some(s) => started.elapsed().as_secs() >= s,
            None => case >= cases,
        };
        if done {
            break;
        }
        let seed = &seeds[rng.random_range(0..seeds.len())];
        let bytes = mutate(seed, &mut rng);
        run_one(&format!("case-{case}"), &bytes);
        ran += 1;
    }
    case_started.store(u64::MAX, Ordering::Relaxed);
    let _ = watchdog.join();
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_seeded_and_change_the_input() {
        let original: Vec<u8> = (0..=255).collect();
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| mutate(&original, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        let changed = run(1).iter().filter(|m| m.as_slice() != original).count();
        assert!(
            changed >= 45,
            "only {changed} of 50 mutations changed the input"
        );
    }

    #[test]
    fn a_panicking_parser_fails_the_harness_and_its_input_is_kept() {
        let seeds = vec![vec![1u8, 2, 3, 4, 5, 6, 7, 8]];
        let result = std::panic::catch_unwind(|| {
            fuzz("harness-self-test", &seeds, |bytes| {
                assert!(bytes.len() == 8, "a parser that cannot take other lengths");
            })
        });
        let message = *result.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("made the parser panic"), "{message}");
        assert!(fuzz("harness-self-test-ok", &seeds, |_| {}) >= DEFAULT_CASES.min(1));
    }
}
