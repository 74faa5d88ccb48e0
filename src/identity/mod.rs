//! Credentials: password hashing and verification.

pub mod password;
