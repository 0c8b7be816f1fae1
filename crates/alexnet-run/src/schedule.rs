//! The learning-rate policy, Section 5: "The heuristic which we followed was to divide the learning
//! rate by 10 when the validation error rate stopped improving with the current learning rate. The
//! learning rate was initialized at 0.01 and reduced three times prior to termination."

use serde::{Deserialize, Serialize};

use crate::recipe::{LrPolicy, ScheduleRecipe};

/// The policy's state; saved in checkpoints so that a resumed run drops at the same epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub lr: f64,
    /// Lowest validation top-1 error seen so far.
    pub best_error: Option<f64>,
    pub epochs_without_improvement: usize,
    pub drops: usize,
}

impl LrSchedule {
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            best_error: None,
            epochs_without_improvement: 0,
            drops: 0,
        }
    }

    /// Called after each epoch with that epoch's validation error; returns whether lr was divided.
    pub fn end_of_epoch(
        &mut self,
        recipe: &ScheduleRecipe,
        epochs_done: usize,
        val_error: f64,
    ) -> bool {
        let improved = self
            .best_error
            .is_none_or(|best| val_error < best - recipe.min_delta);
        if self.best_error.is_none_or(|best| val_error < best) {
            self.best_error = Some(val_error);
        }
        let drop = match recipe.policy {
            LrPolicy::Fixed => false,
            LrPolicy::Step => {
                recipe.step_epochs > 0 && epochs_done.is_multiple_of(recipe.step_epochs)
            }
            LrPolicy::Plateau => {
                self.epochs_without_improvement = if improved {
                    0
                } else {
                    self.epochs_without_improvement + 1
                };
                self.epochs_without_improvement >= recipe.patience.max(1)
                    && self.drops < recipe.max_drops
            }
        };
        if drop {
            self.lr *= recipe.factor;
            self.drops += 1;
            self.epochs_without_improvement = 0;
        }
        drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_divides_by_ten_after_patience_and_at_most_max_drops_times() {
        let recipe = ScheduleRecipe {
            patience: 2,
            max_drops: 2,
            min_delta: 0.01,
            ..ScheduleRecipe::default()
        };
        let mut s = LrSchedule::new(0.01);
        // 0.5 best; 0.495 is within min_delta (no improvement); 0.6 worse -> drop after 2.
        let errors = [0.5, 0.495, 0.6, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3];
        let drops: Vec<bool> = errors
            .iter()
            .enumerate()
            .map(|(e, &v)| s.end_of_epoch(&recipe, e + 1, v))
            .collect();
        assert_eq!(
            drops,
            vec![false, false, true, false, false, true, false, false, false]
        );
        assert!((s.lr - 0.0001).abs() < 1e-12);
        assert_eq!(s.best_error, Some(0.3));
    }

    #[test]
    fn step_policy_drops_every_step_epochs() {
        let recipe = ScheduleRecipe {
            policy: LrPolicy::Step,
            step_epochs: 3,
            ..ScheduleRecipe::default()
        };
        let mut s = LrSchedule::new(1.0);
        let drops: Vec<usize> = (1..=7)
            .filter(|&e| s.end_of_epoch(&recipe, e, 0.1))
            .collect();
        assert_eq!(drops, vec![3, 6]);
        assert!((s.lr - 0.01).abs() < 1e-12);
    }
}
