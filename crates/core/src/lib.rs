//! openvgw-core: the vocabulary every other crate shares.
//!
//! Tenants and ids, the resource model, lifecycle states, crypto proposals, validation of names / CIDRs / ASNs,
//! quotas, configuration and the typed [`Error`]. Nothing here knows about HTTP, SQL or a vendor's wire format:
//! the dialects map these types to their wire shapes and codes in one place each.

pub mod config;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod model;
pub mod validate;

pub use error::{Error, Field, Quota, Result};
pub use ids::Kind;

/// Milliseconds since the Unix epoch (the unit Alibaba's `CreateTime` uses).
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
