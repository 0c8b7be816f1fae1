//! An experiment as a file (`experiments/NAME.toml`): the claim it checks, the recipe every run
//! starts from, and the arms, each a list of recipe overrides, so that a user adds an experiment
//! without touching code.
//!
//! ```toml
//! claim = "Local response normalization lowers the error"
//! section = "3.3"
//! base = "recipes/cifar10-fast.toml"
//! [scale.small]
//! epochs = 12
//! seeds = 3
//! [scale.full]
//! epochs = 40
//! seeds = 5
//! [[arm]]
//! name = "lrn"
//! set = ["model.lrn=true"]
//! paper = "CIFAR-10: 11% test error"
//! ```

use std::path::{Path, PathBuf};

use alexnet_baselines::{BaselineOptions, Method};
use alexnet_data::TestViews;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// How long and how often: `--scale small` fits a 2-core machine, `full` a bigger one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub epochs: usize,
    pub seeds: usize,
    /// Overrides for this scale only (a shorter schedule, say).
    #[serde(default)]
    pub set: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scales {
    pub small: Scale,
    pub full: Scale,
}

/// One arm: the runs that share these overrides.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// Names the arm's run directories (`<arm>-seed<k>`): letters, digits, `-`, `_`, `.`.
    pub name: String,
    #[serde(default)]
    pub set: Vec<String>,
    /// The paper's figure for this arm, as the paper gives it.
    #[serde(default)]
    pub paper: Option<String>,
    /// Test time: with `views`, `ensemble` or `runs_of` the arm's figures come from evaluating its
    /// networks' last checkpoints after training, not from the training log.
    #[serde(default)]
    pub views: Option<TestViews>,
    /// Networks whose softmax outputs are averaged for one figure (Section 6's five): seeds
    /// 0..k-1 are the first ensemble, k..2k-1 the next.
    #[serde(default)]
    pub ensemble: Option<usize>,
    /// Train nothing: evaluate the networks of this other arm (centre against 10-crop on the same
    /// checkpoints).
    #[serde(default)]
    pub runs_of: Option<String>,
    /// A rate sweep (Figure 1: "the learning rates for each network were chosen independently
    /// to make training as fast as possible"): the arms of one group each train seed 0, and only
    /// the group's best (fewest epochs to `train_error_target`, then lowest validation error)
    /// trains the other seeds.
    #[serde(default)]
    pub sweep: Option<String>,
}

impl Arm {
    /// Whether the arm's figures come from evaluating checkpoints after training.
    pub fn evaluated(&self) -> bool {
        self.views.is_some() || self.ensemble.is_some() || self.runs_of.is_some()
    }

    /// The arm whose runs hold this arm's networks.
    pub fn trained_arm(&self) -> &str {
        self.runs_of.as_deref().unwrap_or(&self.name)
    }

    pub fn ensemble_size(&self) -> usize {
        self.ensemble.unwrap_or(1)
    }
}

/// A classical method beside the CNN (the paper's Table 1), on the same splits; its row is named
/// after the method.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineArm {
    pub method: Method,
    #[serde(default)]
    pub paper: Option<String>,
    /// Side the images are resized to before their features are taken (default 32).
    #[serde(default)]
    pub side: Option<usize>,
}

impl BaselineArm {
    pub fn options(&self) -> BaselineOptions {
        let defaults = BaselineOptions::default();
        BaselineOptions {
            side: self.side.unwrap_or(defaults.side),
            ..defaults
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// What the paper claims, in a sentence.
    pub claim: String,
    /// Where it says so.
    pub section: String,
    /// The recipe every run starts from (relative to the directory the command runs in).
    pub base: PathBuf,
    /// Overrides for every arm.
    #[serde(default)]
    pub set: Vec<String>,
    /// A training top-1 error whose first crossing is reported for each arm, in epochs and wall
    /// time (Figure 1: 25%).
    #[serde(default)]
    pub train_error_target: Option<f64>,
    /// Stop each run at the epoch it reaches `train_error_target` (it counts as finished there).
    #[serde(default)]
    pub stop_at_target: bool,
    pub scale: Scales,
    #[serde(rename = "arm")]
    pub arms: Vec<Arm>,
    #[serde(rename = "baseline", default)]
    pub baselines: Vec<BaselineArm>,
    /// The file's name without `.toml`.
    #[serde(skip)]
    pub name: String,
}

impl Experiment {
    /// Reads and checks an experiment file. An unknown or mistyped field is an error naming it.
    pub fn load(path: &Path) -> Result<Self, DefinitionError> {
        let text = std::fs::read_to_string(path).map_err(|e| DefinitionError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let invalid = |reason: String| DefinitionError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let tree: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.message().into()))?;
        let mut experiment: Experiment = serde_path_to_error::deserialize(toml::Value::Table(tree))
            .map_err(|e| {
                let field = e.path().to_string();
                invalid(format!("{field}: {}", e.into_inner().message().trim()))
            })?;
        experiment.name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        experiment.check().map_err(invalid)?;
        Ok(experiment)
    }

    fn check(&self) -> Result<(), String> {
        if self.arms.is_empty() || self.arms.len() + self.baselines.len() < 2 {
            return Err(format!(
                "{} arm(s) and {} baseline(s): an experiment compares at least 2, one an arm",
                self.arms.len(),
                self.baselines.len()
            ));
        }
        for (i, baseline) in self.baselines.iter().enumerate() {
            let name = baseline.method.name();
            let taken = self.arms.iter().any(|a| a.name == name)
                || self.baselines[..i]
                    .iter()
                    .any(|b| b.method == baseline.method);
            if taken {
                return Err(format!("baseline[{i}].method {name:?} is used twice"));
            }
        }
        for (i, arm) in self.arms.iter().enumerate() {
            let ok = !arm.name.is_empty()
                && arm
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(format!(
                    "arm[{i}].name {:?}: use letters, digits, -, _ and .",
                    arm.name
                ));
            }
            if self.arms[..i].iter().any(|other| other.name == arm.name) {
                return Err(format!("arm[{i}].name {:?} is used twice", arm.name));
            }
        }
        if self.stop_at_target && self.train_error_target.is_none() {
            return Err("stop_at_target needs a train_error_target".into());
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if let Some(other) = &arm.runs_of {
                let trains = self
                    .arms
                    .iter()
                    .any(|a| &a.name == other && a.name != arm.name && a.runs_of.is_none());
                if !trains {
                    return Err(format!(
                        "arm[{i}].runs_of {other:?}: not the name of another arm that trains"
                    ));
                }
            }
            if arm.ensemble == Some(0) {
                return Err(format!("arm[{i}].ensemble: at least 1 network"));
            }
            if let Some(group) = &arm.sweep {
                if arm.evaluated() {
                    return Err(format!(
                        "arm[{i}].sweep: a test-time arm trains nothing to sweep over"
                    ));
                }
                if self.sweep_arms(group).count() < 2 {
                    return Err(format!(
                        "arm[{i}].sweep {group:?}: a sweep needs at least 2 arms in its group"
                    ));
                }
            }
        }
        for (name, scale) in [("small", &self.scale.small), ("full", &self.scale.full)] {
            if scale.epochs == 0 || scale.seeds == 0 {
                return Err(format!("scale.{name}: epochs and seeds must be at least 1"));
            }
            if let Some(arm) = self.arms.iter().find(|a| a.ensemble_size() > scale.seeds) {
                return Err(format!(
                    "arm {:?}: an ensemble of {} needs at least as many seeds, scale.{name} has {}",
                    arm.name,
                    arm.ensemble_size(),
                    scale.seeds
                ));
            }
        }
        Ok(())
    }

    /// The arms of sweep group `group`.
    pub fn sweep_arms<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Arm> + 'a {
        self.arms
            .iter()
            .filter(move |a| a.sweep.as_deref() == Some(group))
    }

    pub fn scale(&self, full: bool) -> &Scale {
        if full {
            &self.scale.full
        } else {
            &self.scale.small
        }
    }
}

/// The experiment files in `dir`, by name.
pub fn list(dir: &Path) -> Result<Vec<Experiment>, DefinitionError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DefinitionError::Unreadable {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Experiment::load(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("alexnet-experiment-def-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    const GOOD: &str = r#"
claim = "c"
section = "3.3"
base = "recipes/demo.toml"
[scale.small]
epochs = 2
seeds = 1
[scale.full]
epochs = 4
seeds = 3
[[arm]]
name = "on"
set = ["model.lrn=true"]
paper = "11%"
[[arm]]
name = "off"
set = ["model.lrn=false"]
"#;

    #[test]
    fn an_experiment_file_reads_and_an_unknown_field_is_named() {
        let experiment = Experiment::load(&write("lrn", GOOD)).unwrap();
        assert_eq!(experiment.name, "lrn");
        assert_eq!(experiment.arms.len(), 2);
        assert_eq!(experiment.arms[0].paper.as_deref(), Some("11%"));
        assert_eq!(experiment.scale(true).seeds, 3);

        let typo = GOOD.replace(
            "set = [\"model.lrn=false\"]",
            "sett = [\"model.lrn=false\"]",
        );
        let err = Experiment::load(&write("typo", &typo))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("typo.toml") && err.contains("arm[1]") && err.contains("sett"),
            "{err}"
        );

        let one_arm = GOOD[..GOOD.rfind("[[arm]]").unwrap()].to_string();
        let err = Experiment::load(&write("one", &one_arm))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 2"), "{err}");
        let twice = GOOD.replace("name = \"off\"", "name = \"on\"");
        let err = Experiment::load(&write("twice", &twice))
            .unwrap_err()
            .to_string();
        assert!(err.contains("used twice"), "{err}");
    }

    #[test]
    fn test_time_arms_name_a_training_arm_and_fit_their_ensembles_in_the_seeds() {
        let with = |extra: &str| format!("{GOOD}\n[[arm]]\nname = \"on-10\"\n{extra}\n");
        let ten = Experiment::load(&write(
            "ten",
            &with("runs_of = \"on\"\nviews = \"ten-crop\""),
        ))
        .unwrap();
        let arm = &ten.arms[2];
        assert_eq!(arm.views, Some(TestViews::TenCrop));
        assert!(arm.evaluated() && !ten.arms[0].evaluated());
        assert_eq!(arm.trained_arm(), "on");

        let err = Experiment::load(&write("nowhere", &with("runs_of = \"of\"")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("arm[2].runs_of") && err.contains("\"of\""),
            "{err}"
        );
        // GOOD's small scale has 1 seed: an ensemble of 2 cannot be made from it.
        let err = Experiment::load(&write("big", &with("ensemble = 2")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ensemble of 2") && err.contains("scale.small"),
            "{err}"
        );
        let err = Experiment::load(&write("views", &with("views = \"nine-crop\"")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("arm[2].views"), "{err}");
    }

    #[test]
    fn a_sweep_group_has_two_arms_that_train() {
        let swept = GOOD.replace("paper = \"11%\"", "paper = \"11%\"\nsweep = \"rate\"");
        let err = Experiment::load(&write("lonely", &swept))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("arm[0].sweep \"rate\"") && err.contains("at least 2"),
            "{err}"
        );
        let both = format!("{swept}sweep = \"rate\"\n");
        let experiment = Experiment::load(&write("both", &both)).unwrap();
        let names: Vec<&str> = experiment
            .sweep_arms("rate")
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["on", "off"]);
    }
}
