//! k nearest neighbours: each test image takes the labels of the `k` training images closest to it
//! in Euclidean distance (linfa-nn's exact linear search), and ranks the classes by their votes.

use linfa_nn::distance::L2Dist;
use linfa_nn::{LinearSearch, NearestNeighbour};
use ndarray::Array2;
use rayon::prelude::*;

use crate::method::BaselineError;

/// For every test row, the classes ranked best first: by the number of the `k` nearest training
/// rows with that label, a tie going to the class whose nearest member is nearer. Classes with no
/// vote come after, in index order.
pub fn rank_classes(
    train: &Array2<f32>,
    train_labels: &[usize],
    test: &Array2<f32>,
    classes: usize,
    k: usize,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Vec<usize>>, BaselineError> {
    let index = LinearSearch::new()
        .from_batch(train, L2Dist)
        .map_err(|e| BaselineError::Fit(format!("k-NN index: {e}")))?;
    progress.set_length(test.nrows() as u64);
    test.outer_iter()
        .into_par_iter()
        .map(|row| {
            let neighbours = index
                .k_nearest(row, k)
                .map_err(|e| BaselineError::Fit(format!("k-NN query: {e}")))?;
            // (votes, rank of the nearest voter) per class: more votes first, then nearer.
            let mut score = vec![(0usize, usize::MAX); classes];
            for (rank, (_, i)) in neighbours.iter().enumerate() {
                let s = &mut score[train_labels[*i]];
                s.0 += 1;
                s.1 = s.1.min(rank);
            }
            let mut ranked: Vec<usize> = (0..classes).collect();
            ranked.sort_by_key(|&c| (std::cmp::Reverse(score[c].0), score[c].1, c));
            progress.inc(1);
            Ok(ranked)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_vote_and_a_tie_goes_to_the_nearer_class() {
        // Training points on a line: class 0 at 0, 1, 2; class 1 at 10, 11; class 2 at 20.
        let train = Array2::from_shape_vec((6, 1), vec![0., 1., 2., 10., 11., 20.]).unwrap();
        let labels = [0, 0, 0, 1, 1, 2];
        let test = Array2::from_shape_vec((3, 1), vec![1.2, 10.4, 16.0]).unwrap();
        let bar = indicatif::ProgressBar::hidden();
        let ranked = rank_classes(&train, &labels, &test, 3, 3, &bar).unwrap();
        // 1.2: neighbours 1, 2, 0 -> class 0 with 3 votes.
        assert_eq!(ranked[0][0], 0);
        // 10.4: 10, 11 (class 1), then 2 or 20? 2 is 8.4 away, 20 is 9.6: class 0 -> 1 wins 2:1.
        assert_eq!(ranked[1], vec![1, 0, 2]);
        // 16.0: 20 (4.0), 11 (5.0), 10 (6.0): class 1 has 2 votes, class 2 one.
        assert_eq!(ranked[2], vec![1, 2, 0]);
        // k = 1: the nearest alone; here 20 at 4.0 beats 11 at 5.0.
        let ranked = rank_classes(&train, &labels, &test, 3, 1, &bar).unwrap();
        assert_eq!(ranked[2][0], 2);
        // k = 2 at 16.0: one vote each for 2 (nearest) and 1: the tie goes to the nearer, 2.
        let ranked = rank_classes(&train, &labels, &test, 3, 2, &bar).unwrap();
        assert_eq!(ranked[2], vec![2, 1, 0]);
    }
}
