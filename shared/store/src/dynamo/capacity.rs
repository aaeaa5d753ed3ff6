//! Read and write capacity units consumed, as DynamoDB reports them (`ReturnConsumedCapacity`
//! `TOTAL` on every call: table and indexes together). The benchmarks' cost model.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::ConsumedCapacity as Reported;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Capacity units are counted in thousandths (DynamoDB reports halves for eventually
/// consistent reads, and fractions on some transactional paths).
const MILLI: i64 = 1000;

/// Counters shared by a store and its clones.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    read_calls: AtomicU64,
    write_calls: AtomicU64,
}

/// What was consumed up to a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumedCapacity {
    /// Read capacity units (read request units on demand).
    pub read_units: Decimal,
    /// Write capacity units (write request units on demand).
    pub write_units: Decimal,
    /// Read calls made (`GetItem`, `Query`, `BatchGetItem`).
    pub read_calls: u64,
    /// Write calls made (`PutItem`, `UpdateItem`, `DeleteItem`, `TransactWriteItems`).
    pub write_calls: u64,
}

impl ConsumedCapacity {
    /// What was consumed between `earlier` and this snapshot.
    pub fn since(&self, earlier: &ConsumedCapacity) -> ConsumedCapacity {
        ConsumedCapacity {
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
            read_calls: self.read_calls.saturating_sub(earlier.read_calls),
            write_calls: self.write_calls.saturating_sub(earlier.write_calls),
        }
    }
}

fn milli<'a>(reported: impl IntoIterator<Item = &'a Reported>) -> u64 {
    reported
        .into_iter()
        .filter_map(Reported::capacity_units)
        .filter_map(|u| Decimal::try_from(u).ok())
        .map(|u| (u * Decimal::from(MILLI)).round().to_u64().unwrap_or(0))
        .sum()
}

impl CapacityMeter {
    pub(crate) fn read<'a>(&self, reported: impl IntoIterator<Item = &'a Reported>) {
        self.read_calls.fetch_add(1, Ordering::Relaxed);
        self.read_milli.fetch_add(milli(reported), Ordering::Relaxed);
    }

    pub(crate) fn write<'a>(&self, reported: impl IntoIterator<Item = &'a Reported>) {
        self.write_calls.fetch_add(1, Ordering::Relaxed);
        self.write_milli.fetch_add(milli(reported), Ordering::Relaxed);
    }

    /// A write call that failed (a lost condition): DynamoDB charges it but reports nothing.
    pub(crate) fn failed_write(&self) {
        self.write_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ConsumedCapacity {
        let units = |a: &AtomicU64| Decimal::from(a.load(Ordering::Relaxed)) / Decimal::from(MILLI);
        ConsumedCapacity {
            read_units: units(&self.read_milli),
            write_units: units(&self.write_milli),
            read_calls: self.read_calls.load(Ordering::Relaxed),
            write_calls: self.write_calls.load(Ordering::Relaxed),
        }
    }
}
