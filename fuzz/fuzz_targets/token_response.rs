//! Fuzz target `token_response`: see fuzz/props/token_response.rs for the input format and the properties.
//!
//! `FUZZ_IGNORE="text|other text"` ignores failures whose message contains one of the texts,
//! to look past known failures (see fuzz/README.md).
#![no_main]

#[allow(dead_code)]
#[path = "../props/common.rs"]
mod common;
#[path = "../props/token_response.rs"]
mod token_response;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = token_response::check(data) {
        if !common::ignored(&failure) {
            panic!("property failed: {failure}");
        }
    }
});
