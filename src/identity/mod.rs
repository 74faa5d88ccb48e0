//! Credentials: password hashing and verification, tokens, one-time tickets, and the
//! slowing of failed binds.

pub mod hashers;
pub mod legacy;
pub mod password;
pub mod throttle;
pub mod ticket;
pub mod token;
