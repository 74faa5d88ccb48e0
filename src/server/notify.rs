//! Readiness for a service manager: systemd's `Type=notify` protocol (sd_notify(3)), a
//! datagram of `KEY=value` lines to the socket named by `$NOTIFY_SOCKET`, a path or, with
//! a leading `@`, an abstract socket name. Without the variable nothing is sent.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// The listeners are bound and the server is serving.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={status}\n"));
}

/// A graceful shutdown has begun.
pub fn stopping() {
    send("STOPPING=1\n");
}

/// Send `message`; a failure is logged, never fatal (the server serves either way).
fn send(message: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(socket.as_bytes(), message.as_bytes()) {
        tracing::warn!(error = %e, socket = %socket.to_string_lossy(), "cannot notify the service manager");
    }
}

fn send_to(socket: &[u8], message: &[u8]) -> io::Result<()> {
    let datagram = UnixDatagram::unbound()?;
    match socket.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            datagram.send_to_addr(message, &addr)?;
        }
        None => {
            let path = std::path::Path::new(std::ffi::OsStr::from_bytes(socket));
            datagram.send_to(message, path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str().as_bytes(), b"READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("tessera-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(format!("@{name}").as_bytes(), b"STOPPING=1\n").unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\n");
        assert!(send_to(b"/nonexistent/notify.sock", b"READY=1\n").is_err());
    }
}
