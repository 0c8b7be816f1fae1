//! The ranks of a data-parallel run, as one of them sees them: its rank, how many there are, and
//! the two collective operations training needs (an all-reduce of the gradients, a broadcast of
//! rank 0's messages).
//!
//! A process alone ([`Peers::alone`]) is a group of one, where both are the identity. Data
//! parallelism runs on MPI (cargo feature `mpi`, [`crate::mpi_world`]): the processes of an
//! `mpirun` or `srun` job are the ranks. Burn 0.22's own collective operations are not
//! implemented for its CPU backend `flex`, and burn-collective was last published for Burn 0.21;
//! an earlier TCP hub of ours, which sent every gradient through rank 0, gave way to MPI, which
//! every cluster has and whose all-reduce scales (ring, tree, recursive doubling).

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "peers: rank 0 is {theirs:?} and rank {rank} is {ours:?}: every rank must run the same alexnet"
    )]
    Mismatch {
        rank: usize,
        theirs: String,
        ours: String,
    },
    #[error("mpi: {0}")]
    Mpi(String),
    #[error(
        "--model-parallel 2 puts one tower on each of two ranks, and this job has {0} (start it \
         with --devices 2 or mpirun -np 2)"
    )]
    Towers(usize),
}

/// (rank, world size) of this process when an MPI launcher started it: Open MPI's `mpirun`
/// (`OMPI_COMM_WORLD_*`), or MPICH's and Slurm's PMI (`PMI_RANK`, `PMI_SIZE`). Read before MPI
/// is initialised, so that rank 0 alone reads the recipe.
pub fn mpi_launch() -> Option<(usize, usize)> {
    let read = |name: &str| std::env::var(name).ok()?.parse::<usize>().ok();
    [
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("PMI_RANK", "PMI_SIZE"),
    ]
    .iter()
    .find_map(|(rank, size)| Some((read(rank)?, read(size)?)))
}

/// This rank's place among the ranks of its machine, as the MPI launcher says.
pub fn local_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.parse().ok())
}

/// The group, as seen from one rank.
pub struct Peers {
    pub rank: usize,
    pub world_size: usize,
    /// The MPI job, when there is one.
    #[cfg(feature = "mpi")]
    mpi: Option<crate::mpi_world::MpiWorld>,
}

impl Peers {
    /// A group of one: every collective operation is the identity.
    pub fn alone() -> Self {
        Self {
            rank: 0,
            world_size: 1,
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Joins the MPI job this process was started in (`mpirun`, `srun`), whose ranks must all
    /// say the same `identity` (the program and its version).
    #[cfg(feature = "mpi")]
    pub fn join_mpi(identity: &str) -> Result<Self, PeerError> {
        let world = crate::mpi_world::MpiWorld::init()?;
        let (rank, world_size) = (world.rank(), world.size());
        let theirs = world.broadcast(identity.as_bytes().to_vec());
        let group = Self {
            rank,
            world_size,
            mpi: Some(world),
        };
        if theirs != identity.as_bytes() {
            let mismatch = PeerError::Mismatch {
                rank,
                theirs: String::from_utf8_lossy(&theirs).into_owned(),
                ours: identity.to_string(),
            };
            // The ranks that agree with rank 0 would wait for this one.
            group.abort_on_error(&mismatch);
            return Err(mismatch);
        }
        Ok(group)
    }

    /// Without MPI there is no group to join.
    #[cfg(not(feature = "mpi"))]
    pub fn join_mpi(_identity: &str) -> Result<Self, PeerError> {
        Err(PeerError::Mpi(
            "this alexnet was built without MPI; data parallelism needs `cargo build --release \
             --features mpi` (with Open MPI: apt-get install openmpi-bin libopenmpi-dev \
             libclang-dev) and mpirun"
                .into(),
        ))
    }

    /// Under MPI: from now on, a collective that waits longer than `timeout` ends the job (a
    /// rank that is there but frozen). Nothing alone.
    pub fn watch_collectives(&self, timeout: std::time::Duration) {
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.mpi
            && self.world_size > 1
        {
            world.watch_collectives(timeout);
        }
        let _ = timeout;
    }

    /// After a failed run under MPI: says `error` and ends every rank of the job, so that none
    /// waits on this one. Nothing alone (the caller reports the error).
    pub fn abort_on_error(&self, error: &dyn std::fmt::Display) {
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.mpi
            && self.world_size > 1
        {
            eprintln!("error: rank {} of {}: {error}", self.rank, self.world_size);
            world.abort(1);
        }
        let _ = error;
    }

    /// The link between the towers of a model-parallel run: this rank's tower and the other's,
    /// when the job has two ranks.
    pub fn tower_link(&self) -> Result<std::sync::Arc<dyn alexnet_model::TowerLink>, PeerError> {
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.mpi
            && self.world_size == 2
        {
            return Ok(world.tower_link());
        }
        Err(PeerError::Towers(self.world_size))
    }

    /// Replaces `values` on every rank with their sum over all ranks.
    pub fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError> {
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.mpi
            && self.world_size > 1
        {
            world.all_reduce_sum(values);
        }
        let _ = values;
        Ok(())
    }

    /// Rank 0's `bytes`, on every rank (what other ranks pass in is replaced).
    pub fn broadcast(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, PeerError> {
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.mpi
            && self.world_size > 1
        {
            return Ok(world.broadcast(bytes));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_the_collectives_are_the_identity() {
        let mut peers = Peers::alone();
        assert!(peers.is_root());
        let mut values = [1.5f32, -2.0, 3.25];
        peers.all_reduce_sum(&mut values).unwrap();
        assert_eq!(values, [1.5, -2.0, 3.25]);
        assert_eq!(peers.broadcast(vec![7, 8]).unwrap(), vec![7, 8]);
    }

    #[cfg(not(feature = "mpi"))]
    #[test]
    fn without_mpi_joining_says_how_to_build_it() {
        let err = Peers::join_mpi("alexnet").err().unwrap().to_string();
        assert!(
            err.contains("--features mpi") && err.contains("mpirun"),
            "{err}"
        );
    }
}
