//! Loopback ports: a free one for a server to take, and waiting until one is taken.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on now. Another process may take it before the caller's
/// server does; the server then fails to bind, it does not share the port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether something accepts connections on loopback `port` before `timeout` runs out.
pub fn listens_within(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
