//! Batches on worker threads, ahead of the training step (Section 4.1: the augmented images "are
//! generated in Python code on the CPU while the GPU is training on the previous batch of images").
//!
//! One producer thread per epoch builds batch after batch (each batch's images in parallel on the
//! rayon pool) into a bounded queue of `prefetch` batches; the training loop only ever takes the next
//! ready batch. Every random choice of an image's view is drawn from a generator seeded by
//! (seed, epoch, position in the epoch), so a seeded run sees the same batches whatever the threads
//! do, and a resumed run sees the batches the interrupted one would have.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::augment::{
    CropPosition, View, pca_colour_shift, random_view, ten_crop_views, write_view,
};
use crate::error::DataError;
use crate::patch_source::PatchSource;
use crate::shuffle::{EpochOrder, Shuffle, epoch_order};
use crate::stats::DatasetStats;

/// Which views of each image a batch holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ViewPlan {
    /// Random crop, optional reflection and PCA colour noise of standard deviation `pca_sigma`.
    Train { flip: bool, pca_sigma: f32 },
    /// The centre crop only.
    Centre,
    /// The centre crop and its horizontal reflection, consecutive for each image.
    CentreFlip,
    /// The ten views of Section 4.1, consecutive for each image.
    TenCrop,
}

impl ViewPlan {
    pub fn views_per_image(self) -> usize {
        match self {
            ViewPlan::TenCrop => 10,
            ViewPlan::CentreFlip => 2,
            _ => 1,
        }
    }
}

/// Which views of each test image a network sees, its softmax averaged over them (Section 4.1:
/// "the network makes a prediction by extracting five 224 x 224 patches ... as well as their
/// horizontal reflections ... and averaging the predictions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestViews {
    /// The centre crop only.
    #[default]
    Centre,
    /// The centre crop and its reflection: the two of the ten views left where the crop is the
    /// whole image (CIFAR-10's 32x32), at a fifth of 10-crop's cost.
    CentreFlip,
    /// The four corner crops, the centre and their reflections.
    TenCrop,
}

impl TestViews {
    pub fn plan(self) -> ViewPlan {
        match self {
            TestViews::Centre => ViewPlan::Centre,
            TestViews::CentreFlip => ViewPlan::CentreFlip,
            TestViews::TenCrop => ViewPlan::TenCrop,
        }
    }

    /// How tables and messages name the views.
    pub fn label(self) -> &'static str {
        match self {
            TestViews::Centre => "centre crop",
            TestViews::CentreFlip => "centre + reflection",
            TestViews::TenCrop => "10-crop",
        }
    }
}

/// The names of the recipe's `data.val_views` (serde's), so that a flag and a recipe field accept
/// and refuse the same words.
impl std::str::FromStr for TestViews {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        use serde::de::IntoDeserializer;
        let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            name.into_deserializer();
        TestViews::deserialize(name).map_err(|e| e.to_string())
    }
}

/// `images` is `[len * views_per_image, 3, crop, crop]`; the views of image `i` are consecutive.
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    /// Positions of the images in the data set.
    pub indices: Vec<usize>,
    pub views_per_image: usize,
    pub crop: usize,
    /// Images in the whole batch, over every rank of a data-parallel run (`len()` is this rank's
    /// share of them).
    pub global_len: usize,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// `[views, 3, crop, crop]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.len() * self.views_per_image, 3, self.crop, self.crop]
    }
}

#[derive(Clone)]
pub struct BatchLoader {
    pub set: Arc<dyn PatchSource>,
    pub stats: Arc<DatasetStats>,
    pub crop: usize,
    pub batch_size: usize,
    pub plan: ViewPlan,
    pub seed: u64,
    /// Batches built ahead of the consumer.
    pub prefetch: usize,
    /// Data parallelism: this loader builds rank `rank`'s share of each batch, of `world_size`
    /// shares. Every image keeps the view it would have in the whole batch.
    pub rank: usize,
    pub world_size: usize,
    /// How a training epoch is ordered (`data.shuffle`), and how many shards are mixed at once
    /// under [`Shuffle::Shards`] (`data.shuffle_window`).
    pub shuffle: Shuffle,
    pub shuffle_window: usize,
}

/// SplitMix64 of a combination: independent streams for (seed, epoch, position).
fn stream(seed: u64, epoch: u64, position: u64) -> u64 {
    let mut z = seed
        ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ position.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl BatchLoader {
    pub fn new(
        set: Arc<dyn PatchSource>,
        stats: Arc<DatasetStats>,
        crop: usize,
        batch_size: usize,
        plan: ViewPlan,
        seed: u64,
    ) -> Result<Self, DataError> {
        if crop > set.side() || stats.side != set.side() {
            return Err(DataError::CropTooLarge {
                crop,
                side: set.side().min(stats.side),
            });
        }
        Ok(Self {
            set,
            stats,
            crop,
            batch_size: batch_size.max(1),
            plan,
            seed,
            prefetch: 3,
            rank: 0,
            world_size: 1,
            shuffle: Shuffle::Global,
            shuffle_window: 16,
        })
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.set.len().div_ceil(self.batch_size)
    }

    /// The order images are visited in epoch `epoch`: a seeded shuffle for training (of the whole
    /// set, or of shards and windows of them), the stored order otherwise.
    pub fn order(&self, epoch: usize) -> EpochOrder {
        if !matches!(self.plan, ViewPlan::Train { .. }) {
            return EpochOrder::stored(self.set.len());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(stream(self.seed, epoch as u64, u64::MAX));
        epoch_order(
            &self.set.blocks(),
            self.shuffle,
            self.shuffle_window,
            &mut rng,
        )
    }

    /// Which positions of an epoch's order of `len` images batch `batch` holds (all ranks' shares).
    fn batch_positions(&self, batch: usize, len: usize) -> Range<usize> {
        batch * self.batch_size..((batch + 1) * self.batch_size).min(len)
    }

    /// This rank's contiguous share of batch `batch`; the shares of all ranks make up the batch.
    fn share(&self, batch: usize, len: usize) -> Range<usize> {
        let whole = self.batch_positions(batch, len);
        let start = whole.start + whole.len() * self.rank / self.world_size;
        let end = whole.start + whole.len() * (self.rank + 1) / self.world_size;
        start..end
    }

    /// Asks the storage for this rank's images of window `window` of `order` (every batch that
    /// starts in it), if there is such a window.
    fn read_ahead(&self, order: &EpochOrder, window: usize) {
        let Some(window) = order.windows.get(window) else {
            return;
        };
        let len = order.indices.len();
        let batches = window.positions.start.div_ceil(self.batch_size)
            ..window.positions.end.div_ceil(self.batch_size);
        let mut images: Vec<usize> = batches
            .flat_map(|b| order.indices[self.share(b, len)].iter().copied())
            .collect();
        images.sort_unstable();
        self.set.read_ahead(&images);
    }

    /// Builds batch number `batch` of epoch `epoch` (what the worker thread does). Fails only when
    /// a stored patch cannot be read back (a damaged shard).
    pub fn build(&self, epoch: usize, order: &[usize], batch: usize) -> Result<Batch, DataError> {
        let global_len = self.batch_positions(batch, order.len()).len();
        let share = self.share(batch, order.len());
        let start = share.start;
        let indices: Vec<usize> = order[share].to_vec();
        let views = self.plan.views_per_image();
        let view_size = 3 * self.crop * self.crop;
        let mut images = vec![0.0f32; indices.len() * views * view_size];
        let side = self.set.side();
        images
            .par_chunks_mut(views * view_size)
            .zip(&indices)
            .enumerate()
            .try_for_each(|(offset, (out, &index))| {
                let patch = self.set.patch(index)?;
                let (chosen, shift): (Vec<View>, [f32; 3]) = match self.plan {
                    ViewPlan::Train { flip, pca_sigma } => {
                        let position = (start + offset) as u64;
                        let mut rng =
                            ChaCha8Rng::seed_from_u64(stream(self.seed, epoch as u64, position));
                        let view = random_view(&mut rng, side, self.crop, flip);
                        (
                            vec![view],
                            pca_colour_shift(&mut rng, &self.stats, pca_sigma),
                        )
                    }
                    ViewPlan::Centre => (
                        vec![CropPosition::Centre.view(side, self.crop, false)],
                        [0.0; 3],
                    ),
                    ViewPlan::CentreFlip => (
                        [false, true]
                            .map(|flip| CropPosition::Centre.view(side, self.crop, flip))
                            .to_vec(),
                        [0.0; 3],
                    ),
                    ViewPlan::TenCrop => (ten_crop_views(side, self.crop).to_vec(), [0.0; 3]),
                };
                for (view, out) in chosen.into_iter().zip(out.chunks_mut(view_size)) {
                    write_view(&patch, &self.stats, self.crop, view, shift, out);
                }
                Ok::<(), DataError>(())
            })?;
        Ok(Batch {
            labels: indices.iter().map(|&i| self.set.label(i)).collect(),
            indices,
            images,
            views_per_image: views,
            crop: self.crop,
            global_len,
        })
    }

    /// The batches of epoch `epoch` from batch `first_batch` on, built ahead on a worker thread.
    /// An error ends the epoch's stream.
    pub fn epoch(&self, epoch: usize, first_batch: usize) -> Receiver<Result<Batch, DataError>> {
        let (sender, receiver) = sync_channel(self.prefetch);
        let loader = self.clone();
        std::thread::spawn(move || {
            let order = loader.order(epoch);
            // Under the shard shuffle: the first window not yet asked for. While a window's
            // batches are built, this rank's images of the next one are read ahead.
            let mut unread = None;
            for batch in first_batch..loader.batches_per_epoch() {
                let start = loader.batch_positions(batch, order.indices.len()).start;
                if let Some(window) = order.window_at(start) {
                    for ahead in unread.unwrap_or(window)..=window + 1 {
                        loader.read_ahead(&order, ahead);
                    }
                    unread = Some(unread.unwrap_or(0).max(window + 2));
                }
                let built = loader.build(epoch, &order.indices, batch);
                let failed = built.is_err();
                if sender.send(built).is_err() || failed {
                    break; // the consumer stopped listening, or there is nothing more to build
                }
            }
        });
        receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DecodedSet;

    fn loader(plan: ViewPlan, seed: u64) -> BatchLoader {
        let side = 6;
        let n = 10;
        let pixels: Vec<u8> = (0..n * side * side * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let set = DecodedSet::from_patches(
            side,
            pixels,
            (0..n).map(|i| i % 3).collect(),
            vec!["a".into(), "b".into(), "c".into()],
        );
        let stats = DatasetStats::compute(&set).unwrap();
        BatchLoader::new(Arc::new(set), Arc::new(stats), 4, 4, plan, seed).unwrap()
    }

    #[test]
    fn seeded_epochs_are_identical_and_epochs_differ() {
        let plan = ViewPlan::Train {
            flip: true,
            pca_sigma: 0.1,
        };
        let a: Vec<Batch> = loader(plan, 9)
            .epoch(0, 0)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let b: Vec<Batch> = loader(plan, 9)
            .epoch(0, 0)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().map(Batch::len).sum::<usize>(), 10);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.indices, y.indices);
            assert_eq!(x.images, y.images);
        }
        let other: Vec<Batch> = loader(plan, 9)
            .epoch(1, 0)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_ne!(a[0].images, other[0].images);
        // Starting mid-epoch yields exactly the remaining batches (what resume relies on).
        let rest: Vec<Batch> = loader(plan, 9)
            .epoch(0, 1)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].images, a[1].images);
    }

    /// A set of 20 images stored as five blocks of 4 that records what it is asked to read
    /// ahead, and when (how many patches had been read by then).
    struct Recording {
        set: DecodedSet,
        asked: std::sync::Mutex<Vec<(usize, Vec<usize>)>>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl PatchSource for Recording {
        fn side(&self) -> usize {
            self.set.side()
        }
        fn len(&self) -> usize {
            self.set.len()
        }
        fn label(&self, index: usize) -> usize {
            self.set.label(index)
        }
        fn class_names(&self) -> &[String] {
            self.set.class_names()
        }
        fn patch(&self, index: usize) -> Result<std::borrow::Cow<'_, [u8]>, DataError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            PatchSource::patch(&self.set, index)
        }
        fn skipped(&self) -> &[crate::SkippedFile] {
            self.set.skipped()
        }
        fn blocks(&self) -> Vec<Range<usize>> {
            (0..5).map(|b| b * 4..b * 4 + 4).collect()
        }
        fn read_ahead(&self, indices: &[usize]) {
            let reads = self.reads.load(std::sync::atomic::Ordering::SeqCst);
            self.asked.lock().unwrap().push((reads, indices.to_vec()));
        }
    }

    #[test]
    fn the_shard_shuffle_reads_each_window_ahead_once_and_only_this_ranks_images() {
        let side = 2;
        let n = 20;
        let set = DecodedSet::from_patches(
            side,
            vec![7; n * side * side * 3],
            vec![0; n],
            vec!["a".into()],
        );
        let stats = Arc::new(DatasetStats::compute(&set).unwrap());
        let plan = ViewPlan::Train {
            flip: true,
            pca_sigma: 0.0,
        };
        for (rank, world_size) in [(0, 1), (1, 2)] {
            let source = Arc::new(Recording {
                set: set.clone(),
                asked: Default::default(),
                reads: Default::default(),
            });
            let mut loader =
                BatchLoader::new(source.clone(), stats.clone(), side, 4, plan, 3).unwrap();
            loader.shuffle = Shuffle::Shards;
            loader.shuffle_window = 2; // windows of 8, 8 and 4 images: 2, 2 and 1 batches of 4
            (loader.rank, loader.world_size) = (rank, world_size);
            let order = loader.order(0);
            let batches: Vec<Batch> = loader.epoch(0, 0).into_iter().map(Result::unwrap).collect();
            let asked = source.asked.lock().unwrap().clone();
            // Each window asked for once, in order: the first two before anything was read,
            // the third as the second window begins, after the first window's two batches.
            assert_eq!(asked.len(), 3, "{asked:?}");
            let share = batches[0].len();
            let when: Vec<usize> = asked.iter().map(|(reads, _)| *reads).collect();
            assert_eq!(when, [0, 0, 2 * share]);
            for (window, (_, images)) in order.windows.iter().zip(&asked) {
                // This rank's images of the window's batches, and nothing else.
                let first = window.positions.start / 4;
                let mut mine: Vec<usize> = batches[first..window.positions.end.div_ceil(4)]
                    .iter()
                    .flat_map(|b| b.indices.clone())
                    .collect();
                mine.sort_unstable();
                assert_eq!(images, &mine, "rank {rank} of {world_size}");
            }
        }
    }

    #[test]
    fn evaluation_keeps_order_and_ten_crop_has_ten_views() {
        let batches: Vec<Batch> = loader(ViewPlan::TenCrop, 0)
            .epoch(0, 0)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(batches[0].indices, vec![0, 1, 2, 3]);
        assert_eq!(batches[0].shape(), [40, 3, 4, 4]);
        assert_eq!(batches[0].labels, vec![0, 1, 2, 0]);
    }

    #[test]
    fn centre_flip_holds_the_centre_crop_then_its_mirror() {
        let centre = loader(ViewPlan::Centre, 0)
            .build(0, &[0, 1, 2, 3], 0)
            .unwrap();
        let both = loader(ViewPlan::CentreFlip, 0)
            .build(0, &[0, 1, 2, 3], 0)
            .unwrap();
        assert_eq!(both.shape(), [8, 3, 4, 4]);
        let view = 3 * 4 * 4;
        for image in 0..4 {
            let plain = &centre.images[image * view..][..view];
            assert_eq!(&both.images[2 * image * view..][..view], plain);
            // The second view is the first with every row reversed.
            let mirror = &both.images[(2 * image + 1) * view..][..view];
            for (row, mirrored) in plain.chunks(4).zip(mirror.chunks(4)) {
                let reversed: Vec<f32> = row.iter().rev().copied().collect();
                assert_eq!(mirrored, &reversed[..]);
            }
            assert_ne!(
                mirror, plain,
                "image {image}: a mirror that is no different"
            );
        }
        assert_eq!("centre-flip".parse(), Ok(TestViews::CentreFlip));
        assert!(
            "mirror"
                .parse::<TestViews>()
                .unwrap_err()
                .contains("centre-flip")
        );
    }

    #[test]
    fn the_shares_of_three_ranks_make_up_the_whole_batch() {
        let plan = ViewPlan::Train {
            flip: true,
            pca_sigma: 0.1,
        };
        let whole: Vec<Batch> = loader(plan, 5)
            .epoch(2, 0)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let shares: Vec<Vec<Batch>> = (0..3)
            .map(|rank| {
                let mut loader = loader(plan, 5);
                (loader.rank, loader.world_size) = (rank, 3);
                loader.epoch(2, 0).into_iter().map(Result::unwrap).collect()
            })
            .collect();
        for (b, batch) in whole.iter().enumerate() {
            let parts: Vec<&Batch> = shares.iter().map(|rank| &rank[b]).collect();
            // Batches of 4, 4 and 2 images: shares of 1+1+2 and 0+1+1.
            assert!(parts.iter().all(|p| p.global_len == batch.len()));
            assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), batch.len());
            let indices: Vec<usize> = parts.iter().flat_map(|p| p.indices.clone()).collect();
            let images: Vec<f32> = parts.iter().flat_map(|p| p.images.clone()).collect();
            assert_eq!(indices, batch.indices);
            assert_eq!(
                images, batch.images,
                "a share's views differ from the whole batch's"
            );
        }
        assert_eq!(shares[0][2].len(), 0);
    }
}
