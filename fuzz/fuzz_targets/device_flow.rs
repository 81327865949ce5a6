//! Fuzz target `device_flow`: see fuzz/props/device_flow.rs for the input format and the properties.
//!
//! `FUZZ_IGNORE="text|other text"` ignores failures whose message contains one of the texts,
//! to look past known failures (see fuzz/README.md).
#![no_main]

#[allow(dead_code)]
#[path = "../props/common.rs"]
mod common;
#[path = "../props/device_flow.rs"]
mod device_flow;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = device_flow::check(data) {
        if !common::ignored(&failure) {
            panic!("property failed: {failure}");
        }
    }
});
