//! Top-k of a probability row, and the top-k error of a set of rows.

/// The indices of the `k` largest values of `row`, largest first; ties go to the lower index.
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..row.len()).collect();
    indices.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    indices.truncate(k);
    indices
}

/// Whether `label` is among the `k` most probable classes of `row`.
pub fn in_top_k(row: &[f32], label: usize, k: usize) -> bool {
    top_k(row, k).contains(&label)
}

/// Fraction of rows (`[n, classes]`, row-major) whose label is not among their `k` most probable.
pub fn top_k_error(probabilities: &[f32], classes: usize, labels: &[usize], k: usize) -> f64 {
    assert_eq!(
        probabilities.len(),
        labels.len() * classes,
        "rows and labels disagree"
    );
    if labels.is_empty() {
        return 0.0;
    }
    let misses = probabilities
        .chunks_exact(classes)
        .zip(labels)
        .filter(|&(row, &label)| !in_top_k(row, label, k))
        .count();
    misses as f64 / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_on_hand_cases() {
        assert_eq!(top_k(&[0.1, 0.5, 0.2, 0.15, 0.05], 3), vec![1, 2, 3]);
        // A tie goes to the lower index.
        assert_eq!(top_k(&[0.3, 0.3, 0.4], 2), vec![2, 0]);
        assert_eq!(top_k(&[1.0, 2.0], 5), vec![1, 0]);
    }

    #[test]
    fn top1_and_top5_errors_on_hand_cases() {
        // Seven classes. Row 0: label 1 is first. Row 1: label 0 is second. Row 2: label 6 is last.
        let rows = [
            0.0, 0.9, 0.02, 0.02, 0.02, 0.02, 0.02, //
            0.3, 0.0, 0.4, 0.1, 0.1, 0.05, 0.05, //
            0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.0,
        ];
        let labels = [1, 0, 6];
        assert!((top_k_error(&rows, 7, &labels, 1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((top_k_error(&rows, 7, &labels, 5) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(top_k_error(&rows, 7, &labels, 7), 0.0);
    }
}
