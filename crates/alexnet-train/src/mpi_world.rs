//! MPI as the engine of data parallelism (cargo feature `mpi`, through rsmpi and the system's
//! MPI library): the ranks are the processes `mpirun -np N alexnet train ...` (or `srun`)
//! started, and their rank and number come from MPI.
//!
//! - The gradients of a step, in one contiguous buffer, are summed by `MPI_Allreduce`: the
//!   library picks the algorithm (ring, recursive doubling, tree) for the message size and the
//!   network, which our TCP hub (every byte through rank 0) could not.
//! - Rank 0's messages (the starting state, each epoch's validation errors and decisions) reach
//!   the others by `MPI_Bcast`, a length first and then the bytes.
//! - A rank whose training fails prints its error and calls `MPI_Abort`, which ends every rank
//!   of the job at once; a rank that dies (killed, crashed) is noticed by the launcher, which
//!   ends the others. No rank waits forever on a peer that is gone.
//! - A rank that is there but says nothing (stopped with SIGSTOP, a hung machine) would keep
//!   the others in a collective for ever: once training runs, a watchdog thread ends this rank's
//!   process when one collective has waited longer than `--peer-timeout`, and the launcher then
//!   ends the job. (Starting, rank 0 may decode the data set for hours while the others wait:
//!   that wait is not watched.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alexnet_model::TowerLink;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::point_to_point::send_receive_into;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use crate::peers::PeerError;

/// This process's place in the MPI job. Dropping it finalises MPI.
pub struct MpiWorld {
    world: SimpleCommunicator,
    watch: Arc<Watch>,
    /// The all-reduce's send buffer, kept from step to step: rsmpi has no in-place all-reduce,
    /// and a fresh buffer the size of every gradient (244 MB for the paper's net) each step
    /// would be that many new pages for the kernel to zero.
    send: Mutex<Vec<f32>>,
    // Last: MPI is finalised when the universe goes, after every use of the communicator.
    _universe: Universe,
}

impl MpiWorld {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<Self, PeerError> {
        let universe = mpi::initialize().ok_or(PeerError::Mpi(
            "MPI is already initialised in this process".into(),
        ))?;
        Ok(Self {
            world: universe.world(),
            watch: Arc::new(Watch {
                epoch: Instant::now(),
                since_ms: AtomicU64::new(IDLE),
            }),
            send: Mutex::new(Vec::new()),
            _universe: universe,
        })
    }

    /// From now on, a collective that waits longer than `timeout` for the other ranks ends this
    /// process with an error (exit status 1), and with it the job.
    pub fn watch_collectives(&self, timeout: Duration) {
        let (watch, rank, size) = (self.watch.clone(), self.rank(), self.size());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep((timeout / 4).min(Duration::from_secs(1)));
                let since = watch.since_ms.load(Ordering::Relaxed);
                let now = watch.epoch.elapsed().as_millis() as u64;
                if since != IDLE && now.saturating_sub(since) > timeout.as_millis() as u64 {
                    eprintln!(
                        "error: rank {rank} of {size}: waited {} s for the other ranks (one \
                         stopped, frozen or cut off?); ending the job (the wait is --peer-timeout)",
                        timeout.as_secs()
                    );
                    std::process::exit(1);
                }
            }
        });
    }

    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// Replaces `values` on every rank with their sum over all ranks.
    pub fn all_reduce_sum(&self, values: &mut [f32]) {
        let _waiting = self.watch.enter();
        let mut send = self.send.lock().unwrap_or_else(|e| e.into_inner());
        send.clear();
        send.extend_from_slice(values);
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    /// Rank 0's `bytes` on every rank (what the others pass in is replaced).
    pub fn broadcast(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let _waiting = self.watch.enter();
        let root = self.world.process_at_rank(0);
        let mut length = bytes.len() as u64;
        root.broadcast_into(&mut length);
        bytes.resize(length as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        bytes
    }

    /// The link between the two towers of a model-parallel run (ranks 0 and 1 of two).
    pub fn tower_link(&self) -> Arc<dyn TowerLink> {
        Arc::new(MpiTowerLink {
            world: SimpleCommunicator::world(),
            watch: self.watch.clone(),
        })
    }

    /// Ends every rank of the job with exit status `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

/// The two towers' exchanges (`MPI_Sendrecv` with the other rank), watched like the collectives.
/// MPI keeps point-to-point messages apart from collective ones, so the world communicator
/// serves both (and, predefined, is never freed: the link may outlive no `MPI_Finalize`).
struct MpiTowerLink {
    world: SimpleCommunicator,
    watch: Arc<Watch>,
}

// SAFETY: a handle of MPI's world communicator. MPI is initialised for one thread, and the link is
// only used by the thread that trains (the forward and backward passes of its tower).
unsafe impl Send for MpiTowerLink {}
unsafe impl Sync for MpiTowerLink {}

impl std::fmt::Debug for MpiTowerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiTowerLink(tower {})", self.tower())
    }
}

impl TowerLink for MpiTowerLink {
    fn tower(&self) -> usize {
        self.world.rank() as usize
    }

    fn swap(&self, mine: &[f32], theirs: usize) -> Vec<f32> {
        let _waiting = self.watch.enter();
        let other = self.world.process_at_rank(1 - self.world.rank());
        let mut received = vec![0.0f32; theirs];
        send_receive_into(mine, &other, &mut received[..], &other);
        received
    }
}

/// `since_ms` when no collective is under way.
const IDLE: u64 = u64::MAX;

/// When the collective under way began (ms after `epoch`), for the watchdog.
struct Watch {
    epoch: Instant,
    since_ms: AtomicU64,
}

impl Watch {
    fn enter(&self) -> Waiting<'_> {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.since_ms.store(now, Ordering::Relaxed);
        Waiting(self)
    }
}

/// A collective under way; its end marks the watch idle.
struct Waiting<'a>(&'a Watch);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.since_ms.store(IDLE, Ordering::Relaxed);
    }
}
