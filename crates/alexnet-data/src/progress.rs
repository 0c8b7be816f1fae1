//! Progress of long work (decoding, preparing, training, evaluating): a bar with rate and ETA on a
//! terminal, nothing when hidden. One style for every command.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `length` steps labelled `what` (the length may be set later); hidden when `quiet`.
pub fn progress_bar(length: u64, quiet: bool, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:>8} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} ETA {{eta}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
