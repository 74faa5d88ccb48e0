//! The pure directory domain: DNs, entries, filters, schema and matching rules.
//! No async, no I/O (except loading schema files on request).

pub mod access;
pub mod dn;
pub mod entry;
pub mod filter;
pub mod filter_string;
pub mod matching;
pub mod schema;
pub mod time;
