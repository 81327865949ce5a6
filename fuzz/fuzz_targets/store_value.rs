//! Fuzz target `store_value`: see fuzz/props/store_value.rs for the input format and the
//! properties.
//!
//! `FUZZ_IGNORE="text|other text"` ignores failures whose message contains one of the texts,
//! to look past known failures (see fuzz/README.md).
#![no_main]

#[allow(dead_code)]
#[path = "../props/common.rs"]
mod common;
#[path = "../props/store_value.rs"]
mod store_value;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = store_value::check(data) {
        if !common::ignored(&failure) {
            panic!("property failed: {failure}");
        }
    }
});
