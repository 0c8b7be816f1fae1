//! Model parallelism, Section 3.2: two ranks, one tower of the two-tower network each
//! (`alexnet_model::towers`). Both see every image of every batch (the same views: their loaders
//! are one process's), compute the same logits and loss, and each updates only its own half of
//! every layer, so no gradient crosses between them; the maps they exchange inside the network do.
//!
//! The run directory is the whole network's, as a run on one process writes it: a tower starts
//! from its part of the whole state ([`tower_tensors`]), and after each epoch the towers join
//! their parts ([`whole_tensors`]) for rank 0 to write.

use std::collections::HashMap;
use std::sync::Arc;

use alexnet_model::TowerLink;
use alexnet_model::towers::{join_towers, tower_dims, tower_part};
use alexnet_run::checkpoint::NamedTensor;

/// A model-parallel run as one tower sees it: the link to the other and the whole network's
/// parameter shapes (by path, as checkpoints name them).
#[derive(Debug, Clone)]
pub struct Towers {
    pub link: Arc<dyn TowerLink>,
    pub whole_shapes: HashMap<String, Vec<usize>>,
}

impl Towers {
    /// `weights` are the whole network's (the run's starting state).
    pub fn new(link: Arc<dyn TowerLink>, weights: &[NamedTensor]) -> Self {
        Self {
            link,
            whole_shapes: weights
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone()))
                .collect(),
        }
    }

    fn whole_shape(&self, name: &str) -> &[usize] {
        self.whole_shapes
            .get(name)
            .unwrap_or_else(|| panic!("{name} is a parameter of the whole network"))
    }

    /// This tower's part of whole-network tensors: weights, or velocities (stored flattened, so
    /// their part is flattened too).
    pub fn tower_tensors(&self, whole: &[NamedTensor]) -> Vec<NamedTensor> {
        let tower = self.link.tower();
        whole
            .iter()
            .map(|t| {
                let (dims, values) = tower_part(self.whole_shape(&t.name), &t.values, tower);
                stored_like(t, dims, values)
            })
            .collect()
    }

    /// The whole network's tensors from this tower's part (`mine`) and the other's, which the
    /// towers swap: both call this with their parts of the same tensors, in the same order.
    pub fn whole_tensors(&self, mine: &[NamedTensor]) -> Vec<NamedTensor> {
        let tower = self.link.tower();
        let their_dims: Vec<Vec<usize>> = mine
            .iter()
            .map(|t| tower_dims(self.whole_shape(&t.name), 1 - tower))
            .collect();
        let their_len: usize = their_dims.iter().map(|d| d.iter().product::<usize>()).sum();
        let sent: Vec<f32> = mine.iter().flat_map(|t| t.values.iter().copied()).collect();
        let received = self.link.swap(&sent, their_len);
        let mut rest = &received[..];
        mine.iter()
            .zip(their_dims)
            .map(|(t, their_dims)| {
                let my_dims = tower_dims(self.whole_shape(&t.name), tower);
                let (theirs, after) = rest.split_at(their_dims.iter().product());
                rest = after;
                let (dims, values) = if tower == 0 {
                    join_towers((&my_dims, &t.values), (&their_dims, theirs))
                } else {
                    join_towers((&their_dims, theirs), (&my_dims, &t.values))
                };
                stored_like(t, dims, values)
            })
            .collect()
    }
}

/// A tensor of `dims` stored as `like` is: flattened when `like` is 1-D (a velocity, or a bias,
/// whose part is 1-D anyway).
fn stored_like(like: &NamedTensor, dims: Vec<usize>, values: Vec<f32>) -> NamedTensor {
    NamedTensor {
        name: like.name.clone(),
        shape: if like.shape.len() == 1 {
            vec![values.len()]
        } else {
            dims
        },
        values,
    }
}

#[cfg(test)]
mod tests {
    use alexnet_model::tower_exchange::thread_link_pair;

    use super::*;

    fn named(name: &str, shape: Vec<usize>, values: Vec<f32>) -> NamedTensor {
        NamedTensor {
            name: name.into(),
            shape,
            values,
        }
    }

    #[test]
    fn towers_split_a_state_and_join_it_back_weights_and_flat_velocities() {
        let weights = vec![
            // A linear layer [in 2, out 3] and a bias of 3: tower 0 holds 2 outputs, tower 1 one.
            named("fc.weight", vec![2, 3], vec![1., 2., 3., 4., 5., 6.]),
            named("fc.bias", vec![3], vec![7., 8., 9.]),
        ];
        let velocities = vec![named(
            "fc.weight",
            vec![6],
            vec![-1., -2., -3., -4., -5., -6.],
        )];
        let links = thread_link_pair();
        let joined: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = links
                .into_iter()
                .map(|link| {
                    let (weights, velocities) = (&weights, &velocities);
                    scope.spawn(move || {
                        let towers = Towers::new(link, weights);
                        let parts = towers.tower_tensors(weights);
                        let velocity_parts = towers.tower_tensors(velocities);
                        (
                            parts.clone(),
                            velocity_parts.clone(),
                            towers.whole_tensors(&parts),
                            towers.whole_tensors(&velocity_parts),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (first, second) = (&joined[0], &joined[1]);
        assert_eq!(first.0[0].shape, vec![2, 2]);
        assert_eq!(first.0[0].values, vec![1., 2., 4., 5.]);
        assert_eq!(second.0[1].values, vec![9.]);
        assert_eq!(first.1[0].shape, vec![4]);
        assert_eq!(second.1[0].values, vec![-3., -6.]);
        for (weights_back, velocities_back) in [(&first.2, &first.3), (&second.2, &second.3)] {
            assert_eq!(weights_back, &weights);
            assert_eq!(velocities_back, &velocities);
        }
    }
}
