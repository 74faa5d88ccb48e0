//! Credentials: password hashing and verification.

pub mod password;
pub mod token;
