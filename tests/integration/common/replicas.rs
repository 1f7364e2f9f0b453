//! The real binary as separate processes: `tokenmint` commands and `serve`
//! replicas on free ports, killed when dropped. For what only several
//! processes show: the CLI beside a server, replicas sharing one folder.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");

/// A child process that is killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `tokenmint` in `dir` with a clean environment plus `vars`.
pub fn tokenmint(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("TOKENMINT_ARGON2_M_KIB", "256")
        .env("TOKENMINT_ARGON2_T", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Starts `tokenmint serve` on a free port without waiting for it; returns
/// it with its base URL.
pub fn spawn_server(dir: &std::path::Path, vars: &[(&str, &str)]) -> (Server, String) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut all = vec![("TOKENMINT_BIND", bind.as_str())];
    all.extend_from_slice(vars);
    // TOKENMINT_TEST_SERVER_LOGS=1 shows the servers' logs when debugging.
    let logs = std::env::var_os("TOKENMINT_TEST_SERVER_LOGS").is_some();
    let child = tokenmint(dir, &[], &all)
        .stdout(Stdio::null())
        .stderr(if logs {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    (Server(child), format!("http://{bind}"))
}

/// Waits until the server at `base` answers `/readyz` with 200.
pub async fn wait_ready(base: &str) {
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().as_u16() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `tokenmint serve` on a free port and waits until it is ready.
pub async fn start_server(dir: &std::path::Path, vars: &[(&str, &str)]) -> (Server, String) {
    let (server, base) = spawn_server(dir, vars);
    wait_ready(&base).await;
    (server, base)
}
