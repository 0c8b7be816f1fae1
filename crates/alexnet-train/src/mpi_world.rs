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

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use crate::peers::PeerError;

/// This process's place in the MPI job. Dropping it finalises MPI.
pub struct MpiWorld {
    world: SimpleCommunicator,
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
            _universe: universe,
        })
    }

    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// Replaces `values` on every rank with their sum over all ranks.
    pub fn all_reduce_sum(&self, values: &mut [f32]) {
        let mine = values.to_vec();
        self.world
            .all_reduce_into(&mine[..], values, SystemOperation::sum());
    }

    /// Rank 0's `bytes` on every rank (what the others pass in is replaced).
    pub fn broadcast(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let root = self.world.process_at_rank(0);
        let mut length = bytes.len() as u64;
        root.broadcast_into(&mut length);
        bytes.resize(length as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        bytes
    }

    /// Ends every rank of the job with exit status `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
