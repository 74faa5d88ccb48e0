//! Fault injection for the panic-isolation tests: requests that make their handler panic.
//!
//! Compiled only with the `fault-injection` feature, which the integration tests enable
//! and release builds never do, so no byte on the wire can reach this in production.
//! Owns nothing else; a panic here stands for any bug a fuzzer might find.

use ldap3_proto::proto::{LdapBindRequest, LdapOp};

use crate::ldap::OpContext;
use crate::store::StoreError;

/// An extended operation whose handler panics in the connection's operation task.
pub const OID_PANIC: &str = "1.3.6.1.4.1.99999.7.1";
/// An extended operation whose handler panics on the store's blocking thread, inside a
/// read transaction.
pub const OID_PANIC_IN_STORE: &str = "1.3.6.1.4.1.99999.7.2";
/// A bind DN whose bind panics; binds run on the connection task itself.
pub const PANIC_BIND_DN: &str = "cn=panic,cn=fault-injection";

/// Panic, or fail like the store does after a panic on its thread, when `op` asks for it.
pub async fn operation(ctx: &OpContext, op: &LdapOp) -> Result<(), StoreError> {
    let LdapOp::ExtendedRequest(req) = op else {
        return Ok(());
    };
    match req.name.as_str() {
        OID_PANIC => {
            #[allow(clippy::panic)]
            {
                panic!("fault injection: panic in an operation task");
            }
        }
        OID_PANIC_IN_STORE => {
            ctx.state
                .store
                .read(|_| -> Result<(), StoreError> {
                    #[allow(clippy::panic)]
                    {
                        panic!("fault injection: panic in a store transaction");
                    }
                })
                .await
        }
        _ => Ok(()),
    }
}

/// Panic when the bind names [`PANIC_BIND_DN`].
pub fn bind(req: &LdapBindRequest) {
    if req.dn.eq_ignore_ascii_case(PANIC_BIND_DN) {
        #[allow(clippy::panic)]
        {
            panic!("fault injection: panic in a bind");
        }
    }
}
