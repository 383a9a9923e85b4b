//! A real Prometheus for tests and benchmarks: history backfilled with promtool, started on
//! a free loopback port (another one when that port is taken before Prometheus binds it),
//! optionally with a `--web.config.file` (basic auth, TLS), stopped when dropped. Shared by
//! tests and benches/slo.rs through `#[path]`.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "wait.rs"]
pub mod wait;

/// A running Prometheus.
pub struct Prom {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when its web config turns TLS on).
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on (bound, then released: another process may take it before the
/// caller binds it; [`launch_with`] starts Prometheus again when that happens).
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
    needs_prometheus();
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

/// What `--web.config.file` asks of clients, and how the readiness probe meets it.
#[derive(Clone, Default)]
pub struct Web {
    /// The web config file (TLS server certificate, basic auth users).
    pub yaml: String,
    /// DER of the CA that signed the server certificate: set when `yaml` turns TLS on.
    pub ca_der: Option<Vec<u8>>,
    /// An `Authorization` header value the probe sends when `yaml` asks for basic auth.
    pub authorization: Option<String>,
}

/// Starts Prometheus with no history behind `web` (its URL is `https://` when TLS is on).
pub fn start_with_web(web: &Web) -> Prom {
    start_with_web_on(web, free_port())
}

/// [`start_with_web`], trying `port` first (another port when it is taken).
pub fn start_with_web_on(web: &Web, port: u16) -> Prom {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "global:\n  evaluation_interval: 1s\n";
    launch_with(dir, config, &data, Some(web), port)
}

/// Writes the config and starts Prometheus on `data`, waiting until it is ready.
fn launch(dir: tempfile::TempDir, config: &str, data: &std::path::Path) -> Prom {
    launch_with(dir, config, data, None, free_port())
}

/// Fails (never skips) a test when the tools are missing.
fn needs_prometheus() {
    assert!(
        Command::new("prometheus").arg("--version").output().is_ok(),
        "Debian's prometheus package is needed: apt-get install -y prometheus (.ci/run does it)"
    );
}

/// How many times a port taken between [`free_port`] and Prometheus's bind is replaced.
const BIND_ATTEMPTS: u32 = 5;

/// Starts Prometheus on a free port; if another process took the port first, Prometheus
/// exits saying so and is started again on another one.
fn launch_with(
    dir: tempfile::TempDir,
    config: &str,
    data: &std::path::Path,
    web: Option<&Web>,
    first_port: u16,
) -> Prom {
    needs_prometheus();
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let web_path = dir.path().join("web.yml");
    if let Some(web) = web {
        std::fs::write(&web_path, &web.yaml).unwrap();
    }
    let log_path = dir.path().join("prometheus.log");
    let mut port = first_port;
    for attempt in 1..=BIND_ATTEMPTS {
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=90d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap());
        if web.is_some() {
            cmd.arg(format!("--web.config.file={}", web_path.display()));
        }
        let mut child = cmd.spawn().unwrap();
        let mut exited = None;
        let up = wait::wait_until(Duration::from_secs(30), || {
            exited = child.try_wait().unwrap();
            exited.is_some() || ready(port, web)
        });
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        match exited {
            None if up => {
                let scheme = if web.is_some_and(|w| w.ca_der.is_some()) {
                    "https"
                } else {
                    "http"
                };
                return Prom {
                    child,
                    url: format!("{scheme}://127.0.0.1:{port}"),
                    _dir: dir,
                };
            }
            Some(_) if log.contains("address already in use") && attempt < BIND_ATTEMPTS => {
                port = free_port();
            }
            Some(status) => panic!("Prometheus exited ({status}):\n{log}"),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Prometheus was not ready within 30 s:\n{log}");
            }
        }
    }
    unreachable!("the last attempt returns or panics")
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

/// `/-/ready` answers 200 (a plain probe, usable without an async runtime), over TLS and
/// with an `Authorization` header when `web` asks for them.
fn ready(port: u16, web: Option<&Web>) -> bool {
    use std::io::{Read, Write};
    let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    // A port held by another process accepts the connection and never answers.
    let limit = Some(Duration::from_secs(2));
    if tcp.set_read_timeout(limit).is_err() || tcp.set_write_timeout(limit).is_err() {
        return false;
    }
    let auth = web
        .and_then(|w| w.authorization.as_deref())
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET /-/ready HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n");
    let mut buf = String::new();
    let answered = match web.and_then(|w| w.ca_der.as_deref()) {
        None => tcp.write_all(request.as_bytes()).is_ok() && tcp.read_to_string(&mut buf).is_ok(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.to_vec().into()).unwrap();
            let config = rustls::ClientConfig::builder_with_provider(
                rustls::crypto::ring::default_provider().into(),
            )
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(config.into(), name).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // Prometheus closes without close_notify: what was read before that counts.
            tls.write_all(request.as_bytes()).is_ok() && {
                let _ = tls.read_to_string(&mut buf);
                true
            }
        }
    };
    answered && (buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200"))
}
