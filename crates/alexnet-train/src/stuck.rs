//! A run that learns nothing: the training error stays at chance (1 - 1/classes) epoch after epoch
//! and the weights end larger than they began, the mark of a learning rate too large for the network (weights of order
//! 1e3 and a softmax saturated on one class). The run goes on, since the user may know better, but
//! says so once, naming the rate, instead of training to the end in silence.

/// Epochs in a row at chance, the weights then larger than before them, before the warning.
pub const STUCK_EPOCHS: usize = 3;

/// How close to chance counts as "at chance": an error within 2 points of it.
const MARGIN: f64 = 0.02;

#[derive(Debug)]
pub struct StuckWatch {
    chance_error: f64,
    /// The weights' L2 norm before the current run of epochs at chance, then after each of them.
    norms: Vec<f64>,
    warned: bool,
}

impl StuckWatch {
    /// For `classes` classes, starting from weights of norm `initial_norm`.
    pub fn new(classes: usize, initial_norm: f64) -> Self {
        Self {
            chance_error: 1.0 - 1.0 / classes as f64,
            norms: vec![initial_norm],
            warned: false,
        }
    }

    /// After an epoch: its training top-1 error and the weights' norm. Returns the warning the
    /// first time the run has been at chance for [`STUCK_EPOCHS`] epochs in a row and its weights
    /// are larger at the end of them than before them.
    pub fn after_epoch(&mut self, train_error: f64, norm: f64, lr: f64) -> Option<String> {
        if train_error >= self.chance_error - MARGIN {
            self.norms.push(norm);
        } else {
            // Learning: the streak starts again from these weights.
            self.norms = vec![norm];
        }
        let before = self.norms[0];
        if self.warned || self.norms.len() <= STUCK_EPOCHS || norm <= before {
            return None;
        }
        self.warned = true;
        Some(format!(
            "warning: the training error has stayed at chance ({:.3}) for {} epochs while the \
             weights grew (L2 norm {before:.3e} -> {norm:.3e}): optim.lr = {lr} is likely too \
             large for this network; try a tenth of it",
            self.chance_error,
            self.norms.len() - 1,
        ))
    }
}

/// The L2 norm of all of a network's weights.
pub fn weight_norm(weights: &[alexnet_run::checkpoint::NamedTensor]) -> f64 {
    weights
        .iter()
        .flat_map(|t| &t.values)
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_after_three_epochs_at_chance_with_growing_weights() {
        let mut watch = StuckWatch::new(10, 1.0);
        // At chance, growing: epochs 1 and 2 say nothing, epoch 3 warns, naming the rate.
        assert_eq!(watch.after_epoch(0.90, 10.0, 0.1), None);
        assert_eq!(watch.after_epoch(0.89, 100.0, 0.1), None);
        let warning = watch.after_epoch(0.91, 1000.0, 0.1).expect("a warning");
        assert!(
            warning.contains("optim.lr = 0.1") && warning.contains("0.900"),
            "{warning}"
        );
        // Once only.
        assert_eq!(watch.after_epoch(0.90, 10_000.0, 0.1), None);
    }

    #[test]
    fn a_run_that_learns_or_whose_weights_stay_put_is_not_stuck() {
        // Learning: the error leaves chance, which restarts the count.
        let mut learning = StuckWatch::new(10, 1.0);
        for (error, norm) in [
            (0.90, 2.0),
            (0.90, 3.0),
            (0.70, 4.0),
            (0.90, 5.0),
            (0.90, 6.0),
        ] {
            assert_eq!(learning.after_epoch(error, norm, 0.01), None);
        }
        // At chance but the weights shrink (a small rate and weight decay): no warning.
        let mut quiet = StuckWatch::new(10, 10.0);
        for norm in [9.0, 8.0, 7.0, 6.0] {
            assert_eq!(quiet.after_epoch(0.90, norm, 0.001), None);
        }
        // Growth that is not steady still counts: larger after three epochs at chance than before.
        let mut uneven = StuckWatch::new(10, 10.0);
        assert_eq!(uneven.after_epoch(0.90, 50.0, 1.0), None);
        assert_eq!(uneven.after_epoch(0.90, 40.0, 1.0), None);
        assert!(uneven.after_epoch(0.90, 45.0, 1.0).is_some());
    }
}
