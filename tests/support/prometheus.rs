//! A real Prometheus for tests and benchmarks: history backfilled with promtool, started on
//! a free loopback port, stopped when dropped. Shared by tests/prometheus.rs and
//! benches/slo.rs through `#[path]`.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus.
pub struct Prom {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Backfills `openmetrics` (which must end with `# EOF`) and starts Prometheus on it, with
/// `rules` loaded and evaluated every second when given.
pub fn start(openmetrics: &str, rules: Option<&str>) -> Prom {
    assert!(
        Command::new("prometheus").arg("--version").output().is_ok(),
        "Debian's prometheus package is needed: apt-get install -y prometheus (.ci/run does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("history.om");
    std::fs::write(&om, openmetrics).unwrap();
    let data = dir.path().join("data");
    let out = Command::new("promtool")
        .args([
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=720h",
        ])
        .arg(&om)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut config = String::from("global:\n  scrape_interval: 15s\n  evaluation_interval: 1s\n");
    if let Some(rules) = rules {
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, rules).unwrap();
        config.push_str(&format!("rule_files:\n  - {}\n", path.display()));
    }
    launch(dir, &config, &data)
}

/// Writes the config and starts Prometheus on `data`, waiting until it is ready.
fn launch(dir: tempfile::TempDir, config: &str, data: &std::path::Path) -> Prom {
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=90d")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port) {
        assert!(Instant::now() < deadline, "Prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    Prom {
        child,
        url,
        _dir: dir,
    }
}

/// Starts Prometheus with no history, scraping `target` (`host:port`) every second.
pub fn start_scraping(target: &str) -> Prom {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sandbox\n    static_configs:\n      - targets: ['{target}']\n"
    );
    let data = dir.path().join("data");
    launch(dir, &config, &data)
}

/// `/-/ready` answers 200 (a plain probe, usable without an async runtime).
fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if s.write_all(b"GET /-/ready HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    s.read_to_string(&mut buf).is_ok()
        && (buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200"))
}
