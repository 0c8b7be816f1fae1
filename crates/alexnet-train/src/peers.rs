//! The peers of a data-parallel run, joined over TCP: one process per device, on one machine
//! (loopback) or several. Rank 0 listens on the coordinator address; every other rank connects
//! to it. The same path serves two processes on one CPU and a run across machines.
//!
//! Why our own: Burn 0.22's collective operations (`all_reduce`, DDP's gradient sync) are not
//! implemented for its CPU backend `flex`, and burn-collective, whose global mode joined nodes over
//! the network, was last published for Burn 0.21. What data parallelism needs is small: an
//! all-reduce of the gradients and a broadcast of the starting state, both here.
//!
//! Rank 0 is the hub: it receives every rank's values, adds them in rank order and sends the sum
//! back, so every peer holds the very same bits and the replicas never drift apart.
//!
//! Liveness: once a rank has joined, a thread beside each link sends a heartbeat (an empty frame)
//! several times within `peer_timeout`, whatever the rank is busy with (rank 0 validating, say).
//! Every read and write has `peer_timeout` as its deadline, so a peer that stops answering (killed,
//! stopped with SIGSTOP, cut off) is noticed within that time and the rank stops with an error
//! naming it, rather than waiting forever on a connection the kernel still keeps open.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Says a connection is one of ours, and which version of the exchange it speaks.
const MAGIC: &[u8; 8] = b"ALXPEER2";

/// The length that marks a frame as a heartbeat (no payload follows).
const HEARTBEAT: u64 = u64::MAX;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peers: rank {rank} is not below the world size {world}")]
    BadRank { rank: usize, world: usize },
    #[error("peers: cannot listen on {address}: {reason}")]
    Listen { address: String, reason: String },
    #[error("peers: no coordinator at {address} after {seconds} s: {reason}")]
    NoCoordinator {
        address: String,
        seconds: u64,
        reason: String,
    },
    #[error("peers: only {joined} of {world} ranks joined {address} within {seconds} s")]
    Incomplete {
        address: String,
        joined: usize,
        world: usize,
        seconds: u64,
    },
    #[error("peers: the coordinator refused rank {rank}: {reason}")]
    Refused { rank: usize, reason: String },
    #[error("peers: lost rank {rank}: {reason}")]
    Lost { rank: usize, reason: String },
    #[error(
        "peers: rank {rank} has not answered for {seconds} s (stopped, frozen or cut off?); \
         stopping (the wait is --peer-timeout)"
    )]
    Silent { rank: usize, seconds: u64 },
    #[error("mpi: {0}")]
    Mpi(String),
}

/// Where this process stands among its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub rank: usize,
    pub world_size: usize,
    /// `host:port` of rank 0.
    pub coordinator: String,
    /// How long to wait for the others to join.
    pub join_timeout: Duration,
    /// Once joined: how long a peer may stay silent (no message, no heartbeat) before it is
    /// taken for lost.
    pub peer_timeout: Duration,
}

struct Link {
    rank: usize,
    reader: BufReader<TcpStream>,
    /// Shared with the heartbeat thread, which writes whole frames between the messages.
    writer: Arc<Mutex<BufWriter<TcpStream>>>,
    /// Set once heartbeats run: the deadline of every read and write.
    timeout: Option<Duration>,
}

impl Link {
    fn new(rank: usize, stream: TcpStream) -> std::io::Result<Self> {
        // Small control messages must not wait for Nagle's timer.
        stream.set_nodelay(true)?;
        Ok(Self {
            rank,
            reader: BufReader::with_capacity(1 << 20, stream.try_clone()?),
            writer: Arc::new(Mutex::new(BufWriter::with_capacity(1 << 20, stream))),
            timeout: None,
        })
    }

    /// From now on every read and write has `timeout` as its deadline, and a thread sends a
    /// heartbeat every quarter of it (at most every second) until `stop` is set or the
    /// connection fails.
    fn start_heartbeat(&mut self, timeout: Duration, stop: Arc<AtomicBool>) -> std::io::Result<()> {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        self.timeout = Some(timeout);
        let interval = (timeout / 4).min(Duration::from_secs(1));
        let writer = Arc::clone(&self.writer);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(interval);
                let Ok(mut writer) = writer.lock() else {
                    return;
                };
                let sent = writer
                    .write_all(&HEARTBEAT.to_le_bytes())
                    .and_then(|()| writer.flush());
                if sent.is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        let result = (|| {
            let mut writer = self
                .writer
                .lock()
                .map_err(|_| std::io::Error::other("the heartbeat thread failed"))?;
            writer.write_all(&(bytes.len() as u64).to_le_bytes())?;
            writer.write_all(bytes)?;
            writer.flush()
        })();
        result.map_err(|e| self.lost(e))
    }

    /// The next message, skipping heartbeats.
    fn receive(&mut self) -> Result<Vec<u8>, PeerError> {
        let result = (|| loop {
            let mut length = [0u8; 8];
            self.reader.read_exact(&mut length)?;
            let length = u64::from_le_bytes(length);
            if length == HEARTBEAT {
                continue;
            }
            let mut bytes = vec![0u8; length as usize];
            self.reader.read_exact(&mut bytes)?;
            return Ok(bytes);
        })();
        result.map_err(|e: std::io::Error| self.lost(e))
    }

    fn lost(&self, e: std::io::Error) -> PeerError {
        use std::io::ErrorKind;
        match (e.kind(), self.timeout) {
            (ErrorKind::WouldBlock | ErrorKind::TimedOut, Some(timeout)) => PeerError::Silent {
                rank: self.rank,
                seconds: timeout.as_secs(),
            },
            (kind, _) => PeerError::Lost {
                rank: self.rank,
                reason: if kind == ErrorKind::UnexpectedEof {
                    "it closed the connection (did it stop with an error?)".into()
                } else {
                    e.to_string()
                },
            },
        }
    }
}

/// The joined group, as seen from one rank.
pub struct Peers {
    pub rank: usize,
    pub world_size: usize,
    /// Rank 0: a link to each other rank, in rank order. Other ranks: the link to rank 0.
    links: Vec<Link>,
    /// Tells the heartbeat threads to end when the group is dropped.
    stop_heartbeats: Arc<AtomicBool>,
    /// The MPI job, when MPI is the engine (no links then).
    #[cfg(feature = "mpi")]
    mpi: Option<crate::mpi_world::MpiWorld>,
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop_heartbeats.store(true, Ordering::Relaxed);
    }
}

impl Peers {
    /// A group of one: every collective operation is the identity.
    pub fn alone() -> Self {
        Self {
            rank: 0,
            world_size: 1,
            links: Vec::new(),
            stop_heartbeats: Arc::new(AtomicBool::new(false)),
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// Joins the MPI job this process was started in (`mpirun`, `srun`), whose ranks must all
    /// say the same `identity`. Needs the cargo feature `mpi`.
    #[cfg(feature = "mpi")]
    pub fn join_mpi(identity: &str) -> Result<Self, PeerError> {
        let world = crate::mpi_world::MpiWorld::init()?;
        let (rank, world_size) = (world.rank(), world.size());
        let theirs = world.broadcast(identity.as_bytes().to_vec());
        let group = Self {
            rank,
            world_size,
            links: Vec::new(),
            stop_heartbeats: Arc::new(AtomicBool::new(false)),
            mpi: Some(world),
        };
        if theirs != identity.as_bytes() {
            return Err(PeerError::Refused {
                rank,
                reason: format!(
                    "rank 0 is {:?}, this rank is {identity:?}",
                    String::from_utf8_lossy(&theirs)
                ),
            });
        }
        Ok(group)
    }

    #[cfg(not(feature = "mpi"))]
    pub fn join_mpi(_identity: &str) -> Result<Self, PeerError> {
        Err(PeerError::Mpi(
            "this alexnet was built without MPI; build it with `--features mpi` (and OpenMPI's \
             libopenmpi-dev) to train under mpirun"
                .into(),
        ))
    }

    /// Under MPI: from now on, a collective that waits longer than `timeout` ends the job (the
    /// TCP hub has its heartbeats for this). Nothing otherwise.
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
    /// waits on this one. Nothing otherwise (the caller reports the error).
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

    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Joins the group. `identity` is what must agree between ranks (the program and its
    /// version): a rank that says otherwise than rank 0 is refused, with a clear error.
    pub fn join(config: &PeerConfig, identity: &str) -> Result<Self, PeerError> {
        let PeerConfig {
            rank,
            world_size: world,
            ..
        } = *config;
        if rank >= world {
            return Err(PeerError::BadRank { rank, world });
        }
        if world == 1 {
            return Ok(Self::alone());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let links = if rank == 0 {
            accept_ranks(config, identity, &stop)?
        } else {
            vec![connect_to_root(config, identity, &stop)?]
        };
        Ok(Self {
            rank,
            world_size: world,
            links,
            stop_heartbeats: stop,
            #[cfg(feature = "mpi")]
            mpi: None,
        })
    }

    /// Replaces `values` on every rank with their sum over all ranks, added in rank order.
    pub fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError> {
        if self.world_size == 1 {
            return Ok(());
        }
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.mpi {
            world.all_reduce_sum(values);
            return Ok(());
        }
        if self.is_root() {
            for link in &mut self.links {
                let theirs = link.receive()?;
                if theirs.len() != values.len() * 4 {
                    return Err(PeerError::Lost {
                        rank: link.rank,
                        reason: format!(
                            "it sent {} values where {} were expected",
                            theirs.len() / 4,
                            values.len()
                        ),
                    });
                }
                for (sum, bytes) in values.iter_mut().zip(theirs.chunks_exact(4)) {
                    *sum += f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                }
            }
            let bytes = f32_bytes(values);
            for link in &mut self.links {
                link.send(&bytes)?;
            }
        } else {
            let link = &mut self.links[0];
            link.send(&f32_bytes(values))?;
            let sum = link.receive()?;
            for (value, bytes) in values.iter_mut().zip(sum.chunks_exact(4)) {
                *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
        Ok(())
    }

    /// Rank 0's `bytes`, on every rank (what other ranks pass in is replaced).
    pub fn broadcast(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, PeerError> {
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.mpi {
            return Ok(world.broadcast(bytes));
        }
        if self.is_root() {
            for link in &mut self.links {
                link.send(&bytes)?;
            }
            Ok(bytes)
        } else {
            self.links[0].receive()
        }
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn hello(rank: usize, world: usize, identity: &str) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&(rank as u64).to_le_bytes());
    bytes.extend_from_slice(&(world as u64).to_le_bytes());
    bytes.extend_from_slice(identity.as_bytes());
    bytes
}

/// Rank 0: wait for every other rank, check what each says of itself, answer each (an empty
/// answer admits; otherwise the reason it is refused).
fn accept_ranks(
    config: &PeerConfig,
    identity: &str,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<Link>, PeerError> {
    let address = &config.coordinator;
    let listener = TcpListener::bind(address).map_err(|e| PeerError::Listen {
        address: address.clone(),
        reason: e.to_string(),
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| PeerError::Listen {
            address: address.clone(),
            reason: e.to_string(),
        })?;
    let deadline = Instant::now() + config.join_timeout;
    let mut joined: Vec<Option<Link>> = (0..config.world_size).map(|_| None).collect();
    while joined.iter().skip(1).any(Option::is_none) {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).ok();
                // A stranger that never speaks must not hold up the group.
                stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
                let Ok(mut link) = Link::new(usize::MAX, stream) else {
                    continue;
                };
                let Ok(their_hello) = link.receive() else {
                    continue;
                };
                let verdict = admit(&their_hello, config.world_size, identity, &joined);
                let (answer, rank) = match verdict {
                    Ok(rank) => (Vec::new(), Some(rank)),
                    Err(reason) => (reason.into_bytes(), None),
                };
                if link.send(&answer).is_err() {
                    continue;
                }
                if let Some(rank) = rank {
                    link.rank = rank;
                    // Admitted: it hears from us while we wait for the others, and from now on
                    // must answer within the peer timeout.
                    if link
                        .start_heartbeat(config.peer_timeout, Arc::clone(stop))
                        .is_ok()
                    {
                        joined[rank] = Some(link);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(PeerError::Incomplete {
                        address: address.clone(),
                        joined: joined.iter().skip(1).filter(|l| l.is_some()).count() + 1,
                        world: config.world_size,
                        seconds: config.join_timeout.as_secs(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(PeerError::Listen {
                    address: address.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(joined.into_iter().skip(1).flatten().collect())
}

/// The rank a hello claims, or why it cannot join.
fn admit(
    hello_bytes: &[u8],
    world: usize,
    identity: &str,
    joined: &[Option<Link>],
) -> Result<usize, String> {
    if hello_bytes.len() < 24 || &hello_bytes[..8] != MAGIC {
        return Err("not an alexnet peer (or another version of it)".into());
    }
    let field = |i: usize| u64::from_le_bytes(hello_bytes[i..i + 8].try_into().expect("8 bytes"));
    let (rank, their_world) = (field(8) as usize, field(16) as usize);
    let their_identity = String::from_utf8_lossy(&hello_bytes[24..]);
    if their_world != world {
        return Err(format!(
            "it says the world size is {their_world}, rank 0 says {world}"
        ));
    }
    if rank == 0 || rank >= world {
        return Err(format!("rank {rank} is not in 1..{world}"));
    }
    if joined[rank].is_some() {
        return Err(format!("rank {rank} has already joined"));
    }
    if their_identity != identity {
        return Err(format!(
            "it runs {their_identity}, rank 0 runs {identity} (every rank must run the same program)"
        ));
    }
    Ok(rank)
}

/// Any other rank: connect to rank 0 (retrying until it listens), say who we are, await the verdict.
fn connect_to_root(
    config: &PeerConfig,
    identity: &str,
    stop: &Arc<AtomicBool>,
) -> Result<Link, PeerError> {
    let deadline = Instant::now() + config.join_timeout;
    let stream = loop {
        match TcpStream::connect(&config.coordinator) {
            Ok(stream) => break stream,
            Err(e) if Instant::now() > deadline => {
                return Err(PeerError::NoCoordinator {
                    address: config.coordinator.clone(),
                    seconds: config.join_timeout.as_secs(),
                    reason: e.to_string(),
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let lost = |e: std::io::Error| PeerError::Lost {
        rank: 0,
        reason: e.to_string(),
    };
    let mut link = Link::new(0, stream).map_err(lost)?;
    link.send(&hello(config.rank, config.world_size, identity))?;
    let answer = link.receive()?;
    if !answer.is_empty() {
        return Err(PeerError::Refused {
            rank: config.rank,
            reason: String::from_utf8_lossy(&answer).into_owned(),
        });
    }
    link.start_heartbeat(config.peer_timeout, Arc::clone(stop))
        .map_err(lost)?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_address() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    }

    fn config(rank: usize, world: usize, address: &str) -> PeerConfig {
        PeerConfig {
            rank,
            world_size: world,
            coordinator: address.to_string(),
            join_timeout: Duration::from_secs(20),
            peer_timeout: Duration::from_secs(1),
        }
    }

    /// Runs `work` on `world` ranks joined over loopback, one thread each.
    fn on_ranks<T: Send + 'static>(
        world: usize,
        work: impl Fn(Peers) -> T + Send + Sync + Clone + 'static,
    ) -> Vec<T> {
        let address = free_address();
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let (address, work) = (address.clone(), work.clone());
                std::thread::spawn(move || {
                    work(Peers::join(&config(rank, world, &address), "alexnet 1").unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn all_reduce_gives_every_rank_the_same_sum() {
        let results = on_ranks(3, |mut peers| {
            let r = peers.rank as f32;
            let mut values = vec![r, 10.0 * r, 0.1 + r];
            peers.all_reduce_sum(&mut values).unwrap();
            values
        });
        let expected = [0.0 + 1.0 + 2.0, 30.0, (0.1f32 + 0.0) + 1.1 + 2.1];
        for values in &results {
            assert_eq!(values[0], expected[0]);
            assert_eq!(values[1], expected[1]);
            // Added in rank order on rank 0, then sent: the same bits everywhere.
            assert_eq!(values[2].to_bits(), results[0][2].to_bits());
            assert!((values[2] - expected[2]).abs() < 1e-6);
        }
    }

    #[test]
    fn broadcast_sends_rank_zeros_bytes() {
        let results = on_ranks(2, |mut peers| {
            let mine = format!("from {}", peers.rank).into_bytes();
            peers.broadcast(mine).unwrap()
        });
        assert_eq!(results, vec![b"from 0".to_vec(), b"from 0".to_vec()]);
    }

    #[test]
    fn a_rank_running_another_version_is_refused() {
        let address = free_address();
        let root = {
            let address = address.clone();
            std::thread::spawn(move || {
                let mut c = config(0, 2, &address);
                c.join_timeout = Duration::from_secs(3);
                Peers::join(&c, "alexnet 1").err().map(|e| e.to_string())
            })
        };
        let other = Peers::join(&config(1, 2, &address), "alexnet 2")
            .err()
            .unwrap();
        assert!(
            other
                .to_string()
                .contains("it runs alexnet 2, rank 0 runs alexnet 1"),
            "{other}"
        );
        let root_error = root.join().unwrap().expect("rank 0 times out alone");
        assert!(
            root_error.contains("only 1 of 2 ranks joined"),
            "{root_error}"
        );
    }

    #[test]
    fn a_bad_rank_and_a_missing_coordinator_are_clear_errors() {
        let bad = Peers::join(&config(2, 2, "127.0.0.1:1"), "alexnet 1")
            .err()
            .unwrap();
        assert!(
            bad.to_string()
                .contains("rank 2 is not below the world size 2")
        );
        let mut lonely = config(1, 2, &free_address());
        lonely.join_timeout = Duration::from_millis(300);
        let missing = Peers::join(&lonely, "alexnet 1").err().unwrap();
        assert!(
            missing.to_string().contains("no coordinator at"),
            "{missing}"
        );
    }

    #[test]
    fn a_peer_that_falls_silent_is_noticed_within_the_peer_timeout() {
        let address = free_address();
        let root = {
            let address = address.clone();
            std::thread::spawn(move || {
                let mut c = config(0, 2, &address);
                c.peer_timeout = Duration::from_secs(1);
                let mut peers = Peers::join(&c, "alexnet 1").unwrap();
                let started = Instant::now();
                let error = peers.all_reduce_sum(&mut [1.0]).unwrap_err();
                (error.to_string(), started.elapsed())
            })
        };
        // Rank 1 as a frozen process looks: it joins, then neither speaks nor sends heartbeats
        // (the kernel keeps its connection open).
        let stream = loop {
            match TcpStream::connect(&address) {
                Ok(stream) => break stream,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let mut frozen = Link::new(0, stream).unwrap();
        frozen.send(&hello(1, 2, "alexnet 1")).unwrap();
        assert!(frozen.receive().unwrap().is_empty(), "admitted");
        let (error, waited) = root.join().unwrap();
        assert!(error.contains("rank 1 has not answered for 1 s"), "{error}");
        assert!(waited < Duration::from_secs(10), "noticed in {waited:?}");

        // A rank that is busy but alive (its heartbeats keep coming) is waited for.
        let results = on_ranks(2, |mut peers| {
            if peers.rank == 1 {
                std::thread::sleep(Duration::from_millis(2500));
            }
            let mut values = [1.0f32];
            peers.all_reduce_sum(&mut values).map(|()| values[0])
        });
        assert!(results.iter().all(|r| matches!(r, Ok(2.0))));
    }
}
