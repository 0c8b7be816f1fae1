//! The order a training epoch visits its images in (`data.shuffle`).
//!
//! - `global`: one seeded permutation of the whole set. Any image may follow any other, so the
//!   whole set is read at random: right when it is in memory (or the page cache holds it).
//! - `shards`: for a set larger than memory (ImageNet at 256x256 is about 236 GB of raw shards).
//!   The shards' order is shuffled, the shards are taken `window` at a time, and the images of each
//!   window are shuffled together. Each shard is read once an epoch, as a whole (the loader asks for
//!   the next window's shards ahead, a sequential read, see [`PatchSource::prefetch_block`]), and
//!   only about two windows of shards need to be in the page cache at once, while every batch
//!   still mixes the images of `window` shards. `prepare` writes each shard from one stretch of a
//!   shuffled file list, so a shard already holds a mix of classes.
//!
//! Both orders hold every image exactly once, and are a function of the generator alone.
//!
//! [`PatchSource::prefetch_block`]: crate::PatchSource::prefetch_block

use std::ops::Range;

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shuffle {
    /// One permutation of every image.
    #[default]
    Global,
    /// Shards in a random order, images mixed within windows of shards.
    Shards,
}

/// A window of an epoch: the blocks (shards) whose images fill `positions` of the epoch's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub positions: Range<usize>,
    pub blocks: Vec<usize>,
}

/// An epoch's order of images, and the windows it reads them in (a single window over every block
/// for the global shuffle, which is not read ahead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochOrder {
    pub indices: Vec<usize>,
    pub windows: Vec<Window>,
}

impl EpochOrder {
    /// The stored order (evaluation).
    pub fn stored(len: usize) -> Self {
        Self {
            indices: (0..len).collect(),
            windows: Vec::new(),
        }
    }

    /// The window that holds position `position` of the order, if it is read ahead.
    pub fn window_at(&self, position: usize) -> Option<usize> {
        self.windows
            .iter()
            .position(|w| w.positions.contains(&position))
    }
}

/// The order of one training epoch over a set stored as `blocks` (index ranges that together
/// cover `0..n` once), `window` blocks mixed at a time under [`Shuffle::Shards`].
pub fn epoch_order(
    blocks: &[Range<usize>],
    shuffle: Shuffle,
    window: usize,
    rng: &mut impl Rng,
) -> EpochOrder {
    match shuffle {
        Shuffle::Global => {
            // The blocks cover 0..n: one permutation of it, whatever the blocks.
            let mut indices: Vec<usize> =
                (0..blocks.iter().map(ExactSizeIterator::len).sum()).collect();
            indices.shuffle(rng);
            EpochOrder {
                indices,
                windows: Vec::new(),
            }
        }
        Shuffle::Shards => {
            let mut order: Vec<usize> = (0..blocks.len()).collect();
            order.shuffle(rng);
            let mut indices = Vec::with_capacity(blocks.iter().map(ExactSizeIterator::len).sum());
            let mut windows = Vec::new();
            for chosen in order.chunks(window.max(1)) {
                let start = indices.len();
                indices.extend(chosen.iter().flat_map(|&b| blocks[b].clone()));
                indices[start..].shuffle(rng);
                windows.push(Window {
                    positions: start..indices.len(),
                    blocks: chosen.to_vec(),
                });
            }
            EpochOrder { indices, windows }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Ten shards of uneven sizes (the last one short, as `prepare` leaves it), 0..95.
    fn blocks() -> Vec<Range<usize>> {
        (0..10).map(|b| b * 10..(b * 10 + 10).min(95)).collect()
    }

    fn order(shuffle: Shuffle, window: usize, seed: u64) -> EpochOrder {
        epoch_order(
            &blocks(),
            shuffle,
            window,
            &mut ChaCha8Rng::seed_from_u64(seed),
        )
    }

    #[test]
    fn both_orders_visit_every_image_once_and_repeat_from_the_seed() {
        for shuffle in [Shuffle::Global, Shuffle::Shards] {
            let epoch = order(shuffle, 3, 7);
            let mut seen = epoch.indices.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..95).collect::<Vec<_>>(), "{shuffle:?}");
            assert_eq!(order(shuffle, 3, 7), epoch, "{shuffle:?}: same seed");
            assert_ne!(order(shuffle, 3, 8).indices, epoch.indices, "{shuffle:?}");
            assert_ne!(epoch.indices, (0..95).collect::<Vec<_>>(), "{shuffle:?}");
        }
    }

    #[test]
    fn a_shard_window_holds_exactly_its_shards_images_mixed() {
        let epoch = order(Shuffle::Shards, 3, 1);
        // 10 shards in windows of 3: 3 + 3 + 3 + 1, every shard in one window.
        let sizes: Vec<usize> = epoch.windows.iter().map(|w| w.blocks.len()).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        let mut shards: Vec<usize> = epoch
            .windows
            .iter()
            .flat_map(|w| w.blocks.clone())
            .collect();
        shards.sort_unstable();
        assert_eq!(shards, (0..10).collect::<Vec<_>>());
        assert_eq!(epoch.windows.last().unwrap().positions.end, 95);
        for window in &epoch.windows {
            let images = &epoch.indices[window.positions.clone()];
            assert!(
                images.iter().all(|i| window.blocks.contains(&(i / 10))),
                "an image from outside the window's shards"
            );
            let expected: usize = window.blocks.iter().map(|&b| blocks()[b].len()).sum();
            assert_eq!(images.len(), expected);
            if window.blocks.len() > 1 {
                // Mixed: not one shard after the other.
                let firsts: Vec<usize> = images[..6].iter().map(|i| i / 10).collect();
                assert!(firsts.windows(2).any(|p| p[0] != p[1]), "{images:?}");
            }
        }
        assert_eq!(epoch.window_at(0), Some(0));
        assert_eq!(epoch.window_at(94), Some(3));
        assert_eq!(order(Shuffle::Global, 3, 1).window_at(0), None);
    }

    #[test]
    fn the_global_order_does_not_depend_on_how_the_set_is_cut() {
        let one = epoch_order(
            &[Range { start: 0, end: 95 }],
            Shuffle::Global,
            1,
            &mut ChaCha8Rng::seed_from_u64(4),
        );
        assert_eq!(one, order(Shuffle::Global, 1, 4));
    }
}
