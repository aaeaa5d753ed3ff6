//! The hostile-input harnesses of `cashout-fuzz`, driven by proptest: random bytes, and the seed
//! corpus (`fuzz/corpus/<target>/`) mutated byte by byte. The default run is bounded (2,000 cases per
//! target, about a second in all); `PROPTEST_CASES=100000` (what
//! `./scripts/test --extended` sets) runs long, and `cargo fuzz` runs the same functions under
//! libFuzzer (`fuzz/cargo-fuzz`).

use proptest::prelude::*;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {dir}");
    seeds
}

/// Tokens that break parsers: separators, quotes, huge and tiny numbers, non-ASCII, NUL.
const TOKENS: &[&[u8]] = &[
    b"",
    b"-",
    b"0",
    b".",
    b"..",
    b"%",
    b"%00",
    b"&",
    b"=",
    b"+",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"1e308",
    b"-0",
    b"99999999999999999999999999999999",
    b"0.0000000000000000000000000001",
    "\u{e9}".as_bytes(),
    "\u{1F4B8}".as_bytes(),
    b"\x00",
    b"\xff",
    b" ",
    b"\t",
    b"\r\n",
    b"v1,",
    b"whsec_",
    b"external_id=",
    b"cashout_id=",
    b"\"data\":",
    b"\"attributes\":",
    b"\"status\":\"processed\"",
];

/// Applies `ops` (kind, position, value) to a seed: flip, insert, delete, insert a token,
/// duplicate a span, truncate.
fn mutate(seed: &[u8], ops: &[(u8, u16, u8)]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for &(kind, pos, value) in ops {
        let at = if out.is_empty() {
            0
        } else {
            usize::from(pos) % (out.len() + 1)
        };
        match kind % 6 {
            0 if at < out.len() => out[at] ^= value.max(1),
            1 => out.insert(at, value),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 => {
                let token = TOKENS[usize::from(value) % TOKENS.len()];
                out.splice(at..at, token.iter().copied());
            }
            4 if at < out.len() => {
                let end = (at + usize::from(value % 16) + 1).min(out.len());
                let span = out[at..end].to_vec();
                out.splice(at..at, span);
            }
            5 => out.truncate(at),
            _ => {}
        }
    }
    out
}

fn inputs(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus(target);
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        4 => (0..seeds.len(), prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>()), 0..8))
            .prop_map(move |(i, ops)| mutate(&seeds[i], &ops)),
    ]
}

#[test]
fn every_seed_passes_its_harness_unchanged() {
    for seed in corpus("d24_notification") {
        cashout_fuzz::d24_notification(&seed);
    }
    for seed in corpus("cascad_callback") {
        cashout_fuzz::cascad_callback(&seed);
    }
    for seed in corpus("merchant_body") {
        cashout_fuzz::merchant_body(&seed);
    }
    for seed in corpus("webhook_verify") {
        cashout_fuzz::webhook_verify(&seed);
    }
    for seed in corpus("money") {
        cashout_fuzz::money(&seed);
    }
}

/// 2,000 cases per target by default (well under a second each); `PROPTEST_CASES` overrides.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn d24_notifications_never_panic_and_never_carry_a_status(data in inputs("d24_notification")) {
        cashout_fuzz::d24_notification(&data);
    }

    #[test]
    fn cascad_callbacks_need_their_signature_and_never_panic(data in inputs("cascad_callback")) {
        cashout_fuzz::cascad_callback(&data);
    }

    #[test]
    fn merchant_bodies_never_panic_and_valid_ones_add_up(data in inputs("merchant_body")) {
        cashout_fuzz::merchant_body(&data);
    }

    #[test]
    fn webhook_verification_refuses_tampering_and_agrees_with_the_official_library(data in inputs("webhook_verify")) {
        cashout_fuzz::webhook_verify(&data);
    }

    #[test]
    fn money_parses_exactly_and_rounds_half_even(data in inputs("money")) {
        cashout_fuzz::money(&data);
    }
}
