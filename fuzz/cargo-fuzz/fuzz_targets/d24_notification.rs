#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cashout_fuzz::d24_notification(data));
