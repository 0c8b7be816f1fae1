//! What rank 0 tells the other ranks of a data-parallel run, as typed values over the byte
//! broadcast of [`Peers`]: the starting state (a checkpoint), the epoch to stop at, and whether
//! to stop early (so that every rank stops after the same epoch).

use alexnet_run::Checkpoint;

use crate::error::TrainError;
use crate::peers::Peers;

/// A value that can travel from rank 0 to the others.
pub trait Message: Sized {
    const WHAT: &'static str;
    fn encode(&self) -> Result<Vec<u8>, TrainError>;
    fn decode(bytes: &[u8]) -> Result<Self, TrainError>;
}

impl Message for Checkpoint {
    const WHAT: &'static str = "the starting state";
    fn encode(&self) -> Result<Vec<u8>, TrainError> {
        self.to_bytes().map_err(TrainError::BadStart)
    }
    fn decode(bytes: &[u8]) -> Result<Self, TrainError> {
        Checkpoint::from_bytes(bytes).map_err(TrainError::BadStart)
    }
}

/// Fixed-size values (a count).
fn fixed<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<[u8; N], TrainError> {
    bytes.try_into().map_err(|_| TrainError::BadMessage {
        what,
        found: bytes.len(),
        expected: N,
    })
}

impl Message for usize {
    const WHAT: &'static str = "the last epoch";
    fn encode(&self) -> Result<Vec<u8>, TrainError> {
        Ok((*self as u64).to_le_bytes().to_vec())
    }
    fn decode(bytes: &[u8]) -> Result<Self, TrainError> {
        Ok(u64::from_le_bytes(fixed(Self::WHAT, bytes)?) as usize)
    }
}

impl Peers {
    /// Rank 0's `value` on every rank: rank 0 passes `Some` and gets it back; the others pass
    /// `None` and get what it sent. A run alone keeps its value.
    pub fn from_root<T: Message>(&mut self, value: Option<T>) -> Result<T, TrainError> {
        if self.world_size == 1 || self.is_root() {
            let value = value.expect("rank 0 has the value it sends");
            if self.world_size > 1 {
                self.broadcast(value.encode()?)?;
            }
            return Ok(value);
        }
        T::decode(&self.broadcast(Vec::new())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_their_encoding_and_a_short_message_is_named() {
        assert_eq!(usize::decode(&41usize.encode().unwrap()).unwrap(), 41);
        let err = usize::decode(&[1, 2, 3]).unwrap_err().to_string();
        assert!(
            err.contains("3 bytes for the last epoch, which takes 8"),
            "{err}"
        );
    }
}
