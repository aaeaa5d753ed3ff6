#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cashout_fuzz::merchant_body(data));
