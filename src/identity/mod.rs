//! Credentials: password hashing and verification, tokens, and the slowing of failed binds.

pub mod hashers;
pub mod legacy;
pub mod password;
pub mod throttle;
pub mod token;
