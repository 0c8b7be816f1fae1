//! Multinomial logistic (softmax) regression, fitted by linfa-logistic (L-BFGS on the summed
//! cross-entropy plus `alpha / 2` times the squared weights).
//!
//! The fit runs in f64. In f32 the solver gave up at its starting point (all weights zero, every
//! image the same class: exactly chance) on CIFAR-10's 50,000 x 1,828 HOG features: the summed
//! loss starts near 115,000, where f32 cannot resolve the small decreases its line search
//! needs. The test below at that size fails in f32.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};

use crate::method::BaselineError;

/// Fits on `train` and returns, for every test row, the classes ranked by probability.
pub fn rank_classes(
    train: &Array2<f32>,
    train_labels: &[usize],
    test: &Array2<f32>,
    alpha: f32,
    max_iterations: u64,
) -> Result<Vec<Vec<usize>>, BaselineError> {
    let targets = Array1::from_iter(train_labels.iter().copied());
    // f64: see the note at the top of this file.
    let dataset = DatasetBase::new(train.mapv(f64::from), targets);
    let model = MultiLogisticRegression::<f64>::default()
        .alpha(f64::from(alpha))
        .max_iterations(max_iterations)
        .fit(&dataset)
        .map_err(|e| BaselineError::Fit(format!("softmax regression: {e}")))?;
    // Columns of the probabilities follow `classes()`: the labels seen in training, sorted.
    let classes = model.classes().to_vec();
    let probabilities = model.predict_probabilities(&test.mapv(f64::from));
    Ok(probabilities
        .outer_iter()
        .map(|row| {
            let mut order: Vec<usize> = (0..classes.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order.into_iter().map(|c| classes[c]).collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::error_at;
    use rand::{Rng, SeedableRng};

    #[test]
    fn separates_two_separable_clusters_and_ranks_the_third_class_last_where_it_is_far() {
        // Three clusters in the plane around (-5, 0), (5, 0) and (0, 8), spread 1.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let centres = [(-5.0f32, 0.0f32), (5.0, 0.0), (0.0, 8.0)];
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for (label, (x, y)) in centres.iter().enumerate() {
            for _ in 0..50 {
                points.push(x + rng.random_range(-1.0..1.0));
                points.push(y + rng.random_range(-1.0..1.0));
                labels.push(label);
            }
        }
        let train = Array2::from_shape_vec((150, 2), points).unwrap();
        let test = Array2::from_shape_vec((3, 2), vec![-4.0, 0.5, 4.5, -0.5, 0.3, 7.0]).unwrap();
        let ranked = rank_classes(&train, &labels, &test, 1.0, 200).unwrap();
        assert_eq!(ranked[0][0], 0);
        assert_eq!(ranked[1][0], 1);
        assert_eq!(ranked[2][0], 2);
        // Every training point is classified right: the clusters are linearly separable.
        let on_train = rank_classes(&train, &labels, &train, 1.0, 200).unwrap();
        assert_eq!(error_at(&on_train, &labels, 1), 0.0);
    }
}

#[cfg(test)]
mod realistic_size {
    use super::*;
    use crate::method::error_at;
    use rand::{Rng, SeedableRng};

    /// CIFAR-10's size where it matters to the solver: 50,000 rows of 1,800 features and 10
    /// classes (the summed loss starts near 115,000). Noisy clusters; f32 ends at chance here.
    #[test]
    fn learns_ten_classes_from_fifty_thousand_rows_of_eighteen_hundred_features() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (classes, dims, rows) = (10, 1800, 50_000);
        let centres: Vec<Vec<f32>> = (0..classes)
            .map(|_| (0..dims).map(|_| rng.random_range(-0.5..0.5)).collect())
            .collect();
        let mut sample = |n: usize| {
            let mut values = Vec::with_capacity(n * dims);
            let mut labels = Vec::with_capacity(n);
            for i in 0..n {
                let label = i % classes;
                for centre in &centres[label] {
                    values.push(centre + rng.random_range(-1.0..1.0));
                }
                labels.push(label);
            }
            (Array2::from_shape_vec((n, dims), values).unwrap(), labels)
        };
        let (train, train_labels) = sample(rows);
        let (test, test_labels) = sample(2_000);
        let ranked = rank_classes(&train, &train_labels, &test, 1.0, 100).unwrap();
        let error = error_at(&ranked, &test_labels, 1);
        // Chance is 0.9; the clusters are far apart in 1,800 dimensions.
        assert!(error < 0.1, "test error {error}");
    }
}
