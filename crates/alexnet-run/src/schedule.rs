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
        val_error: Option<f64>,
    ) -> bool {
        // An epoch not validated (`run.validate_every`) neither improves nor fails to.
        let improved = val_error.map(|error| {
            self.best_error
                .is_none_or(|best| error < best - recipe.min_delta)
        });
        if let Some(error) = val_error
            && self.best_error.is_none_or(|best| error < best)
        {
            self.best_error = Some(error);
        }
        let drop = match recipe.policy {
            // Set at every step instead (`step_lr`).
            LrPolicy::Fixed | LrPolicy::Cosine | LrPolicy::OneCycle => false,
            LrPolicy::Step => {
                recipe.step_epochs > 0 && epochs_done.is_multiple_of(recipe.step_epochs)
            }
            LrPolicy::Plateau => {
                self.epochs_without_improvement = match improved {
                    Some(true) => 0,
                    Some(false) => self.epochs_without_improvement + 1,
                    None => self.epochs_without_improvement,
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

/// The learning rate of step `step` (counted from 0 over the whole run) for the policies that
/// set it at every step; `None` for those that change it between epochs.
pub fn step_lr(
    recipe: &ScheduleRecipe,
    base_lr: f64,
    step: u64,
    steps_per_epoch: usize,
    epochs: usize,
) -> Option<f64> {
    match recipe.policy {
        LrPolicy::Cosine => {
            let total = (steps_per_epoch * epochs).max(1) as f64;
            let warmup = (recipe.warmup_epochs * steps_per_epoch as f64).min(total);
            let step = step as f64;
            Some(if step < warmup {
                base_lr * (step + 1.0) / warmup
            } else {
                let progress = ((step - warmup) / (total - warmup).max(1.0)).min(1.0);
                base_lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            })
        }
        LrPolicy::OneCycle => {
            let last = (steps_per_epoch * epochs).max(2) as f64 - 1.0;
            let peak = (recipe.warmup_epochs * steps_per_epoch as f64 - 1.0).clamp(0.0, last);
            let start = base_lr / recipe.div_factor;
            let end = start / recipe.final_div_factor;
            let step = (step as f64).min(last);
            // From `from` at progress 0 to `to` at progress 1 along half a cosine.
            let anneal = |from: f64, to: f64, progress: f64| {
                to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            };
            Some(if step <= peak && peak > 0.0 {
                anneal(start, base_lr, step / peak)
            } else {
                anneal(base_lr, end, (step - peak) / (last - peak).max(1.0))
            })
        }
        LrPolicy::Plateau | LrPolicy::Step | LrPolicy::Fixed => None,
    }
}

/// Whether `policy` sets the rate at every step ([`step_lr`]) rather than between epochs.
pub fn sets_rate_every_step(policy: LrPolicy) -> bool {
    matches!(policy, LrPolicy::Cosine | LrPolicy::OneCycle)
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
            .map(|(e, &v)| s.end_of_epoch(&recipe, e + 1, Some(v)))
            .collect();
        assert_eq!(
            drops,
            vec![false, false, true, false, false, true, false, false, false]
        );
        assert!((s.lr - 0.0001).abs() < 1e-12);
        assert_eq!(s.best_error, Some(0.3));
    }

    #[test]
    fn cosine_warms_up_linearly_then_follows_half_a_cosine_to_zero() {
        let recipe = ScheduleRecipe {
            policy: LrPolicy::Cosine,
            warmup_epochs: 1.0,
            ..ScheduleRecipe::default()
        };
        // 10 steps an epoch, 5 epochs: 10 warm-up steps, then 40 of cosine.
        let lr = |step| step_lr(&recipe, 0.2, step, 10, 5).unwrap();
        assert!((lr(0) - 0.02).abs() < 1e-12, "first warm-up step: 0.2 / 10");
        assert!((lr(4) - 0.1).abs() < 1e-12);
        assert!(
            (lr(9) - 0.2).abs() < 1e-12,
            "the warm-up ends at the full rate"
        );
        assert!(
            (lr(10) - 0.2).abs() < 1e-12,
            "the cosine starts at the full rate"
        );
        assert!((lr(30) - 0.1).abs() < 1e-12, "half way: half the rate");
        let quarter = 0.2 * 0.5 * (1.0 + (std::f64::consts::PI / 4.0).cos());
        assert!((lr(20) - quarter).abs() < 1e-12);
        assert!(lr(49) < 0.001 && lr(49) > 0.0, "near zero at the last step");
        assert!(
            step_lr(&ScheduleRecipe::default(), 0.2, 3, 10, 5).is_none(),
            "the paper's plateau rule changes the rate between epochs"
        );
        // The cosine never drops the rate at an epoch's end.
        assert!(sets_rate_every_step(LrPolicy::Cosine));
        assert!(!sets_rate_every_step(LrPolicy::Plateau));
        let mut s = LrSchedule::new(0.2);
        assert!(!s.end_of_epoch(&recipe, 1, Some(0.9)));
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
            .filter(|&e| s.end_of_epoch(&recipe, e, Some(0.1)))
            .collect();
        assert_eq!(drops, vec![3, 6]);
        assert!((s.lr - 0.01).abs() < 1e-12);
    }

    #[test]
    fn one_cycle_rises_and_falls_along_half_cosines_as_pytorch_does() {
        let recipe = ScheduleRecipe {
            policy: LrPolicy::OneCycle,
            warmup_epochs: 1.0,
            ..ScheduleRecipe::default()
        };
        // 10 steps an epoch, 4 epochs: steps 0..=39, the peak at step 9 (PyTorch's
        // `pct_start * total - 1` with pct_start 0.25).
        let lr = |step| step_lr(&recipe, 0.1, step, 10, 4).unwrap();
        let start = 0.1 / 25.0;
        let end = start / 1e4;
        assert!((lr(0) - start).abs() < 1e-15, "starts at lr / div_factor");
        assert!((lr(9) - 0.1).abs() < 1e-15, "peaks at the end of the rise");
        assert!(
            (lr(39) - end).abs() < 1e-15,
            "ends at start / final_div_factor"
        );
        // Half way up: the mean of start and peak; a third of the way: the cosine's value.
        let up = |p: f64| 0.1 + (start - 0.1) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
        assert!((lr(3) - up(3.0 / 9.0)).abs() < 1e-15);
        // Step 24 of the fall (15 of 30 after the peak): half way down.
        assert!((lr(24) - (0.1 + end) / 2.0).abs() < 1e-15);
        // A step past the end (a resumed run with more epochs) stays at the end.
        assert!((lr(45) - end).abs() < 1e-15);
        let rises: Vec<bool> = (0..39).map(|s| lr(s + 1) > lr(s)).collect();
        assert_eq!(rises, (0..39).map(|s| s < 9).collect::<Vec<_>>());
        // No rise at all: from the peak straight down.
        let flat = ScheduleRecipe {
            warmup_epochs: 0.0,
            ..recipe
        };
        assert!((step_lr(&flat, 0.1, 0, 10, 4).unwrap() - 0.1).abs() < 1e-15);
    }
}
