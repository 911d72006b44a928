//! Skips that CI can see. A test that cannot run here (no g++, no libnvrtc) still passes,
//! but cargo captures the output of passing tests, so a `println!` alone would never be
//! read. [`record`] also writes the reason to `$CARGO_TARGET_TMPDIR/imle-skipped/<test>`;
//! `.ci/run` empties that folder before the tests and prints a `SKIPPED: ...` line for each
//! file afterwards. Where a skip must not happen, the environment says so and the test fails
//! instead (see [`required`]).

use std::path::PathBuf;

/// Records that `test` did not check anything, and why.
pub fn record(test: &str, why: &str) {
    eprintln!("SKIPPED: {test}: {why}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imle-skipped");
    // Best effort: the message above is still there with --nocapture.
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(test), format!("{test}: {why}\n"));
}

/// Whether the environment variable `var` asks for the check (set to anything but "0"):
/// then a missing tool is a failure, not a skip.
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v != "0")
}

/// Skips `test` (recording why), or panics when `var` makes the check mandatory.
pub fn skip_unless_required(test: &str, var: &str, why: &str) {
    if required(var) {
        panic!("{test}: {why}, and {var} is set, so this check must run");
    }
    record(test, why);
}
