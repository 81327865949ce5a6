//! The fuzz corpora, replayed on stable: every seed in `fuzz/corpus/<target>/` and every past
//! crash in `fuzz/regressions/<target>/` goes through the checks the fuzz target makes
//! (`fuzz/props/<target>.rs`, compiled here as it is there). See fuzz/README.md.
//!
//! `fuzz/regressions/<target>/pending/` holds failures found on this branch whose fixes are
//! on other branches: they are not replayed with the others, and
//! `pending_regressions_still_fail` checks that each still fails, so that a fix shows up as a
//! failing test until its file is moved up to `fuzz/regressions/<target>/`.

#[path = "../fuzz/props/callback.rs"]
mod callback;
#[path = "../fuzz/props/common.rs"]
mod common;
#[path = "../fuzz/props/device_flow.rs"]
mod device_flow;
#[path = "../fuzz/props/layer_401.rs"]
mod layer_401;
#[path = "../fuzz/props/store_value.rs"]
mod store_value;
#[path = "../fuzz/props/token_response.rs"]
mod token_response;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

type Check = fn(&[u8]) -> Result<(), String>;

const TARGETS: [(&str, Check); 5] = [
    ("token_response", token_response::check),
    ("device_flow", device_flow::check),
    ("layer_401", layer_401::check),
    ("callback", callback::check),
    ("store_value", store_value::check),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir` (none if it does not exist), sorted; hidden files
/// (`.gitkeep`) are not inputs.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.expect("a readable directory entry").path())
            .filter(|path| path.is_file())
            .filter(|path| {
                !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs `check` on `file`: `Err` with what failed, a panic included.
fn run(check: Check, file: &Path) -> Result<(), String> {
    let data = fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    match catch_unwind(AssertUnwindSafe(|| check(&data))) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(not a string)");
            Err(format!("panicked: {message}"))
        }
    }
}

fn replay(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let seeds = files_in(&fuzz_dir().join("corpus").join(target));
    assert!(seeds.len() >= 5, "the seed corpus of {target} is missing");
    let regressions = files_in(&fuzz_dir().join("regressions").join(target));
    let failures: Vec<String> = seeds
        .iter()
        .chain(&regressions)
        .filter_map(|file| {
            run(*check, file)
                .err()
                .map(|e| format!("{}: {e}", file.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} inputs of {target} fail:\n{}",
        failures.len(),
        seeds.len() + regressions.len(),
        failures.join("\n")
    );
}

#[test]
fn token_response_corpus_and_regressions() {
    replay("token_response");
}

#[test]
fn device_flow_corpus_and_regressions() {
    replay("device_flow");
}

#[test]
fn layer_401_corpus_and_regressions() {
    replay("layer_401");
}

#[test]
fn callback_corpus_and_regressions() {
    replay("callback");
}

#[test]
fn store_value_corpus_and_regressions() {
    replay("store_value");
}

#[test]
fn pending_regressions_still_fail() {
    let mut fixed = Vec::new();
    for (target, check) in TARGETS {
        for file in files_in(&fuzz_dir().join("regressions").join(target).join("pending")) {
            if run(check, &file).is_ok() {
                fixed.push(file.display().to_string());
            }
        }
    }
    assert!(
        fixed.is_empty(),
        "these pending regressions pass now: move each up to fuzz/regressions/<target>/ \
         so that it is replayed with the others:\n{}",
        fixed.join("\n")
    );
}
