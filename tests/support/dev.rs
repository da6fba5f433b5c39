//! `herald dev` as a child process on a free loopback port, for tests that drive the stack the
//! way a user does (the CLI, schemathesis). Deliveries stay on loopback.

use super::port::{free_port, listens_within};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct DevServer {
    child: Child,
    pub port: u16,
}

impl DevServer {
    /// Starts `bin dev` (the `herald` binary) in memory and waits until it listens.
    pub fn start(bin: &Path) -> DevServer {
        Self::start_with(bin, &[])
    }

    /// As [`DevServer::start`], with more environment (`HERALD_ADMIN_KEY`, say).
    pub fn start_with(bin: &Path, env: &[(&str, &str)]) -> DevServer {
        let port = free_port();
        let child = Command::new(bin)
            .args(["dev", "--port", &port.to_string()])
            .env("HERALD_TARGET_POLICY", "loopback")
            .env("HERALD_DELIVERY_TIMEOUT", "1s")
            .env("RUST_LOG", "error")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("HERALD_API_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("herald dev starts");
        let server = DevServer { child, port };
        assert!(
            listens_within(port, Duration::from_secs(30)),
            "herald dev did not listen on {port}"
        );
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
