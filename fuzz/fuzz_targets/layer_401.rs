//! Fuzz target `layer_401`: see fuzz/props/layer_401.rs for the input format and the properties.
//!
//! `FUZZ_IGNORE="text|other text"` ignores failures whose message contains one of the texts,
//! to look past known failures (see fuzz/README.md).
#![no_main]

#[allow(dead_code)]
#[path = "../props/common.rs"]
mod common;
#[path = "../props/layer_401.rs"]
mod layer_401;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = layer_401::check(data) {
        if !common::ignored(&failure) {
            panic!("property failed: {failure}");
        }
    }
});
