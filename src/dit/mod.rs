//! The directory's rules, beneath every front end: who the caller is and what it may do,
//! tokens as entries, finishing and checking an entry, POSIX numbers, references between
//! entries, computed attributes, the tree every directory starts with, and the operations
//! LDAP, the offline importer and later front ends share (add, modify, delete, rename, set
//! a password, generate and rotate a token), and every write as data (`command`), which a
//! single server applies at once and a cluster logs through Raft first.
//!
//! Synchronous functions over a store transaction, with the time passed in (`Policy::now`):
//! no protocol requests, no async, no sockets. A front end decodes its request, calls
//! these, and encodes what they return; refusals are `DitError`s, mapped once.

pub mod caller;
pub mod command;
pub mod computed;
pub mod control;
pub mod credentials;
pub mod entry;
pub mod error;
pub mod names;
pub mod password;
pub mod posix;
pub mod proxy;
pub mod references;
pub mod search;
pub mod token;
pub mod tree;
pub mod write;

pub use error::DitError;

#[cfg(test)]
pub mod testing;
