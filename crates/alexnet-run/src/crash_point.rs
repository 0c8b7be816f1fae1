//! Named places where a test can kill the process, to prove that what a crash there leaves is
//! recovered. `ALEXNET_CRASH_AT=metrics-written` aborts at that point the first time it is
//! reached, `ALEXNET_CRASH_AT=metrics-written:3` only at epoch 3. Unset (always, outside tests),
//! a crash point costs one environment lookup per epoch.

/// Aborts the process (as `kill -9` would: no destructors, no flushing) if the environment asks
/// for a crash at `name` (in `epoch`).
pub fn crash_point(name: &str, epoch: usize) {
    let Ok(wanted) = std::env::var("ALEXNET_CRASH_AT") else {
        return;
    };
    let (point, at_epoch) = match wanted.split_once(':') {
        Some((point, e)) => (point.to_string(), e.parse::<usize>().ok()),
        None => (wanted, None),
    };
    if point == name && at_epoch.is_none_or(|e| e == epoch) {
        eprintln!("crash point {name} (epoch {epoch}): aborting as asked by ALEXNET_CRASH_AT");
        std::process::abort();
    }
}
