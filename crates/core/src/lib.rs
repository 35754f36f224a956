//! openvgw-core: the vocabulary every other crate shares.
//!
//! Tenants and ids, the resource model, lifecycle states, neutral crypto proposals, validation of names / CIDRs /
//! ASNs, paging, quotas, configuration and the typed [`Error`]. Nothing here knows about HTTP, SQL, a daemon, or a
//! vendor's wire names: dialects map these types to their wire shapes and codes, drivers to their daemons'
//! keywords, each in one place.

pub mod config;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod model;
pub mod paging;
pub mod password;
pub mod secret;
pub mod validate;

pub use error::{Error, Field, Pool, Precondition, Quota, Result, Rule};
pub use ids::{IdStyle, Kind};
pub use paging::{Cursor, Page, PageRequest};
pub use secret::Secret;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
