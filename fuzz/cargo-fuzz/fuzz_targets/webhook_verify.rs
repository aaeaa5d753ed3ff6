#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cashout_fuzz::webhook_verify(data));
