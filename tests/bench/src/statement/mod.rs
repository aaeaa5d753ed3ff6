//! A statement of 100,000 requests within a fixed memory bound.
//!
//! The requests are written straight into the store `cashout-local` will use (the embedded
//! SQLite file of its data directory, or a fresh table on DynamoDB Local), through the store's
//! own `create_request` with the core's transitions ([`seed`]), outside the server. Then the real
//! `cashout-local` binary starts on that store, as a user runs it, and the whole statement of
//! the day is fetched over HTTP from this process: JSON twice (the first read warms the store's
//! caches), CSV, and one merchant's JSON (a quarter of the lines). For each: time to the first
//! and the last byte, lines, bytes, and the server's peak RSS (`VmHWM` of `/proc/<pid>/status`,
//! reset through `clear_refs` before each fetch) against its RSS just before. The line count and
//! the totals must equal what was seeded, exactly.

// Progress lines go to stderr.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cashout_system::runner::{Backend, Runner, RunnerSpec, Simulators, free_addr};
use cashout_system::stats::round2;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::bench::{BenchError, fail};

mod seed;

pub use seed::{CurrencyExpect, Expected, MERCHANTS, StatusExpect};

const OPERATOR_KEY: &str = "sk_stmt_operator";
const MERCHANT_KEY: &str = "sk_stmt_merchant";

/// Where the store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementBackend {
    /// SQLite in the runner's data directory.
    Embedded,
    /// DynamoDB Local (and moto for the queues), the emulators the bench command starts.
    Aws,
}

/// How the scenario runs.
#[derive(Debug, Clone)]
pub struct StatementOptions {
    /// The `cashout-local` binary.
    pub binary: PathBuf,
    pub backend: StatementBackend,
    /// Requests to seed.
    pub requests: usize,
    /// Concurrent seeding tasks.
    pub seed_concurrency: usize,
    /// Where the runner's log goes.
    pub log_dir: PathBuf,
}

/// One fetch of a statement.
#[derive(Debug, Clone, Serialize)]
pub struct Fetch {
    /// What was fetched.
    pub what: String,
    /// ms from the request to the response's head, and to the last byte.
    pub first_byte_ms: f64,
    pub last_byte_ms: f64,
    /// Lines of the statement (CSV: records without the header row).
    pub lines: u64,
    pub bytes: u64,
    /// Bytes per second over the whole transfer.
    pub mib_per_second: f64,
    /// The server's RSS just before the fetch, and its peak during it (`VmHWM`, reset before).
    pub rss_before_kib: u64,
    pub peak_rss_kib: u64,
    /// `peak_rss_kib - rss_before_kib`.
    pub peak_increase_kib: i64,
    /// The server's RSS after the fetch.
    pub rss_after_kib: u64,
    /// Whether the peak could be reset before the fetch (otherwise it is the process's peak so
    /// far).
    pub peak_reset: bool,
    /// Every difference from what was seeded (empty: lines and totals exact).
    pub differences: Vec<String>,
}

/// The scenario's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StatementFigure {
    pub backend: String,
    pub requests: usize,
    /// Seconds to write every request into the store.
    pub seed_s: f64,
    /// Seeded requests per second.
    pub seed_per_second: f64,
    /// From spawn to the runner's ready line, ms.
    pub ready_ms: u64,
    /// The server's RSS once started and idle (before any statement), KiB.
    pub idle_rss_kib: u64,
    /// What was seeded, per currency.
    pub expected: Expected,
    pub fetches: Vec<Fetch>,
}

/// `field` of `/proc/<pid>/status`, in KiB.
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS (Linux ≥ 4.0).
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Runs the scenario.
pub async fn statement(options: &StatementOptions) -> Result<StatementFigure, BenchError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    std::fs::create_dir_all(&options.log_dir).map_err(fail)?;
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).map_err(fail)?;
    let clock: Arc<dyn cashout_core::ports::Clock> = Arc::new(cashout_core::ports::SystemClock);
    let first_day = time::OffsetDateTime::now_utc().date();
    eprintln!(
        "  seeding {} requests into the {} store ({} tasks)",
        options.requests,
        match options.backend {
            StatementBackend::Embedded => "embedded",
            StatementBackend::Aws => "DynamoDB Local",
        },
        options.seed_concurrency
    );
    let (backend, (expected, seeding)) = match options.backend {
        StatementBackend::Embedded => {
            let store = Arc::new(
                cashout_store::sqlite::SqliteStore::open(&data_dir.join("cashout.sqlite3"), clock).map_err(fail)?,
            );
            let seeded = seed::seed(store, options.requests, options.seed_concurrency).await?;
            // The store's writer closes with its last handle; give it a moment.
            tokio::time::sleep(Duration::from_millis(500)).await;
            (Backend::Embedded, seeded)
        }
        StatementBackend::Aws => {
            let prefix = "stmt";
            let stack = cashout_system::emulators::stack(prefix).await.map_err(BenchError)?;
            // `stack` names the table `<prefix><32 hex>-<suffix>`.
            let name = stack
                .created
                .table_name
                .get(..prefix.len() + 32)
                .ok_or_else(|| BenchError(format!("unexpected table name {}", stack.created.table_name)))?
                .to_owned();
            let store = Arc::new(cashout_store::dynamo::DynamoStore::new(
                stack.dynamodb.clone(),
                stack.created.table_name.clone(),
                clock,
            ));
            let seeded = seed::seed(store, options.requests, options.seed_concurrency).await?;
            (
                Backend::Aws {
                    dynamodb: stack.dynamodb_url.clone(),
                    sqs: stack.sqs_url.clone(),
                    stack: name,
                },
                seeded,
            )
        }
    };
    eprintln!(
        "  seeded {} requests in {:.1} s",
        expected.lines(),
        seeding.as_secs_f64()
    );

    let spec = RunnerSpec {
        binary: options.binary.clone(),
        data_dir,
        listen: free_addr().map_err(fail)?,
        simulators: Simulators::InRunner {
            listen: free_addr().map_err(fail)?,
        },
        backend: backend.clone(),
        operator_key: OPERATOR_KEY.into(),
        rust_log: "info,tower_http=warn,aws=warn".into(),
        log_dir: Some(options.log_dir.clone()),
        extra_args: Vec::new(),
        env: Vec::new(),
    };
    let runner = spec.start(MERCHANTS[0], MERCHANT_KEY, 0).map_err(BenchError)?;
    let pid = runner.pid();
    let ready_ms = u64::try_from(runner.ready_after.as_millis()).unwrap_or(u64::MAX);
    // Let the start settle (workers polling, the first sweep) before the idle reading.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss_kib = proc_kib(pid, "VmRSS").unwrap_or_default();
    eprintln!(
        "  cashout-local ready in {:?}, idle RSS {idle_rss_kib} KiB",
        runner.ready_after
    );

    let (from, to) = (day(first_day), day(time::OffsetDateTime::now_utc().date()));
    let period = format!("from={from}&to={to}");
    let whole = format!("{}/v1/statements?{period}", runner.base);
    let one_merchant = format!("{whole}&merchant_id={}", MERCHANTS[1]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(fail)?;
    let mut fetches = Vec::new();
    for (what, url, csv, merchant) in [
        ("JSON, whole (first read)", &whole, false, None),
        ("JSON, whole (again)", &whole, false, None),
        ("CSV, whole", &whole, true, None),
        (
            "JSON, one merchant (a quarter)",
            &one_merchant,
            false,
            Some(MERCHANTS[1]),
        ),
    ] {
        let f = fetch(&client, &runner, what, url, csv, merchant, &expected).await?;
        eprintln!(
            "  {what}: {} lines, {} bytes, last byte {} ms; peak RSS {} KiB (+{} KiB over {} KiB before){}",
            f.lines,
            f.bytes,
            f.last_byte_ms,
            f.peak_rss_kib,
            f.peak_increase_kib,
            f.rss_before_kib,
            if f.differences.is_empty() {
                String::from("; lines and totals exact")
            } else {
                format!("; {} DIFFERENCES", f.differences.len())
            }
        );
        fetches.push(f);
    }
    let _ = runner.terminate();
    Ok(StatementFigure {
        backend: backend.name().to_owned(),
        requests: options.requests,
        seed_s: round2(seeding.as_secs_f64()),
        seed_per_second: round2(options.requests as f64 / seeding.as_secs_f64().max(1e-9)),
        ready_ms,
        idle_rss_kib,
        expected,
        fetches,
    })
}

/// `YYYY-MM-DD`.
fn day(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Fetches `url` from the runner, streaming the body, and checks it against `expected` (only
/// `merchant`'s lines when given).
async fn fetch(
    client: &reqwest::Client,
    runner: &Runner,
    what: &str,
    url: &str,
    csv: bool,
    merchant: Option<&str>,
    expected: &Expected,
) -> Result<Fetch, BenchError> {
    let pid = runner.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peak_reset = reset_peak(pid);
    let rss_before_kib = proc_kib(pid, "VmRSS").unwrap_or_default();
    let started = Instant::now();
    let mut req = client.get(url).bearer_auth(OPERATOR_KEY);
    if csv {
        req = req.header(reqwest::header::ACCEPT, "text/csv");
    }
    let mut res = req.send().await.map_err(fail)?;
    let first_byte = started.elapsed();
    let status = res.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| BenchError(format!("{what}: the body was cut after {} bytes: {e}", body.len())))?
    {
        body.extend_from_slice(&chunk);
    }
    let last_byte = started.elapsed();
    let peak_rss_kib = proc_kib(pid, "VmHWM").unwrap_or_default();
    let rss_after_kib = proc_kib(pid, "VmRSS").unwrap_or_default();
    if status != 200 {
        return Err(BenchError(format!(
            "{what}: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )));
    }
    let (lines, differences) = if csv {
        check_csv(&body, merchant, expected)
    } else {
        check_json(&body, merchant, expected)
    };
    Ok(Fetch {
        what: what.to_owned(),
        first_byte_ms: round2(first_byte.as_secs_f64() * 1000.0),
        last_byte_ms: round2(last_byte.as_secs_f64() * 1000.0),
        lines,
        bytes: body.len() as u64,
        mib_per_second: round2(body.len() as f64 / 1_048_576.0 / last_byte.as_secs_f64().max(1e-9)),
        rss_before_kib,
        peak_rss_kib,
        peak_increase_kib: peak_rss_kib as i64 - rss_before_kib as i64,
        rss_after_kib,
        peak_reset,
        differences,
    })
}

/// Sums of lines, per currency and status: (count, requested, paid, reversed).
type Sums = BTreeMap<(String, String), (u64, Decimal, Decimal, Decimal)>;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

/// Compares the lines' sums (and, for a whole JSON statement, its totals) with `expected`.
fn compare(sums: &Sums, lines: u64, merchant: Option<&str>, expected: &Expected, out: &mut Vec<String>) {
    let want_lines = match merchant {
        Some(m) => expected.per_merchant.get(m).copied().unwrap_or_default(),
        None => expected.lines(),
    };
    if lines != want_lines {
        out.push(format!("{lines} lines, {want_lines} seeded"));
    }
    if merchant.is_some() {
        return;
    }
    let mut seen: BTreeMap<(String, String), (u64, Decimal, Decimal)> = BTreeMap::new();
    let mut reversed: BTreeMap<String, Decimal> = BTreeMap::new();
    for ((currency, status), (count, requested, paid, rev)) in sums {
        seen.insert((currency.clone(), status.clone()), (*count, *requested, *paid));
        *reversed.entry(currency.clone()).or_default() += *rev;
    }
    for (currency, c) in &expected.currencies {
        for (status, s) in &c.by_status {
            let got = seen.remove(&(currency.clone(), status.clone())).unwrap_or_default();
            if got != (s.count, s.requested, s.paid) {
                out.push(format!(
                    "lines {currency} {status}: count {} requested {} paid {}; seeded {} / {} / {}",
                    got.0, got.1, got.2, s.count, s.requested, s.paid
                ));
            }
        }
        let got = reversed.get(currency).copied().unwrap_or_default();
        if got != c.reversed {
            out.push(format!("lines {currency}: reversed {got}; seeded {}", c.reversed));
        }
    }
    for ((currency, status), got) in seen {
        out.push(format!("lines {currency} {status}: {got:?}, nothing seeded"));
    }
}

fn check_json(body: &[u8], merchant: Option<&str>, expected: &Expected) -> (u64, Vec<String>) {
    let mut out = Vec::new();
    let statement: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return (0, vec![format!("not JSON: {e}")]),
    };
    let lines = statement["lines"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut sums = Sums::new();
    for l in lines {
        let s = sums
            .entry((
                l["currency"].as_str().unwrap_or_default().to_owned(),
                l["status"].as_str().unwrap_or_default().to_owned(),
            ))
            .or_default();
        s.0 += 1;
        s.1 += dec(l["requested_amount"].as_str().unwrap_or_default());
        s.2 += dec(l["paid_amount"].as_str().unwrap_or("0"));
        s.3 += dec(l["reversed_amount"].as_str().unwrap_or("0"));
    }
    compare(&sums, lines.len() as u64, merchant, expected, &mut out);
    if merchant.is_none() {
        check_totals(&statement["totals"], expected, &mut out);
    }
    (lines.len() as u64, out)
}

/// The statement's own totals against what was seeded, every figure.
fn check_totals(totals: &Value, expected: &Expected, out: &mut Vec<String>) {
    let d = |v: &Value| v.as_str().map(dec);
    for (currency, c) in &expected.currencies {
        let t = &totals[currency.as_str()];
        let figures = [
            ("count", t["count"].as_u64().map(Decimal::from), Decimal::from(c.count)),
            ("requested", d(&t["requested"]), c.requested),
            ("paid", d(&t["paid"]), c.paid),
            ("reversed", d(&t["reversed"]), c.reversed),
            ("pending", d(&t["pending"]), c.pending),
        ];
        for (name, got, want) in figures {
            if got != Some(want) {
                out.push(format!("totals {currency} {name}: {got:?}; seeded {want}"));
            }
        }
        for (status, s) in &c.by_status {
            let t = &t["by_status"][status.as_str()];
            let got = (t["count"].as_u64(), d(&t["requested"]), d(&t["paid"]));
            if got != (Some(s.count), Some(s.requested), Some(s.paid)) {
                out.push(format!("totals {currency} {status}: {got:?}; seeded {s:?}"));
            }
        }
    }
    if let Some(obj) = totals.as_object() {
        for currency in obj.keys().filter(|k| !expected.currencies.contains_key(*k)) {
            out.push(format!("totals: {currency}, nothing seeded in it"));
        }
    }
}

fn check_csv(body: &[u8], merchant: Option<&str>, expected: &Expected) -> (u64, Vec<String>) {
    let text = String::from_utf8_lossy(body);
    let mut rows = text.split("\r\n").filter(|r| !r.is_empty());
    let header: Vec<&str> = rows.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(requested), Some(paid), Some(currency), Some(status), Some(reversed)) = (
        col("requested_amount"),
        col("paid_amount"),
        col("currency"),
        col("status"),
        col("reversed_amount"),
    ) else {
        return (0, vec![format!("unexpected CSV header {header:?}")]);
    };
    let mut sums = Sums::new();
    let mut lines = 0u64;
    for row in rows {
        // No field of these requests holds a comma or a quote.
        let f: Vec<&str> = row.split(',').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or_default();
        let s = sums
            .entry((get(currency).to_owned(), get(status).to_owned()))
            .or_default();
        s.0 += 1;
        s.1 += dec(get(requested));
        s.2 += dec(get(paid));
        s.3 += dec(get(reversed));
        lines += 1;
    }
    let mut out = Vec::new();
    compare(&sums, lines, merchant, expected, &mut out);
    (lines, out)
}
