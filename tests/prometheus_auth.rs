//! Every way the `prometheus:` block authenticates, end to end through the glidepath binary
//! (`run --headless` with an `evaluate` step) against the real `prometheus` binary: basic
//! auth (password from the environment, a file, or the URL) and TLS (a CA file, an untrusted
//! CA, `insecureSkipVerify`) through Prometheus's own `--web.config.file`; bearer tokens and
//! custom headers through a checking reverse proxy in front of it. Right credentials pass,
//! wrong ones fail naming HTTP 401/403, and no secret reaches the output, the journal or a
//! report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::response::IntoResponse;

#[path = "support/prometheus.rs"]
mod support;

use support::{Prom, Web};

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

/// Distinct secrets, so a leak names which one leaked.
const PASSWORD: &str = "pw-Q7x9-basic-secret";
const TOKEN: &str = "tok-K3f8-bearer-secret";
const HEADER_VALUE: &str = "hdr-Z9p2-header-secret";

/// The SLI is a constant computed by Prometheus, so a pass proves the query was answered
/// by it (the report carries the value 0.005) and needs no history.
const SLO: &str = "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: checkout }\nspec:\n  slis:\n    error_ratio: vector(0.005)\n  objectives:\n    - sli: error_ratio\n      pass: [\"<=0.01\"]\n";

/// What one headless run left behind.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    home: tempfile::TempDir,
    reports: PathBuf,
    _work: tempfile::TempDir,
}

impl Outcome {
    fn all(&self) -> String {
        format!("exit {:?}\n{}\n{}", self.code, self.stdout, self.stderr)
    }

    /// The run passed with the value Prometheus computed.
    fn assert_passed(&self) {
        assert_eq!(self.code, Some(0), "{}", self.all());
        let report = std::fs::read_to_string(self.reports.join("report.json")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&report).unwrap();
        let step = &doc["stages"][0]["steps"][0];
        assert_eq!(step["verdict"], "pass", "{step}");
        assert!(report.contains("0.005"), "no SLI value in {report}");
    }

    /// The run failed as infrastructure does (exit 4) with `words` in its output, and did
    /// not panic.
    fn assert_failed_with(&self, words: &[&str]) {
        assert_eq!(self.code, Some(4), "{}", self.all());
        assert!(!self.all().contains("panicked"), "{}", self.all());
        for w in words {
            assert!(self.all().contains(w), "{w:?} not in:\n{}", self.all());
        }
    }

    /// No secret in stdout, stderr, any file of GLIDEPATH_HOME (the journal) or a report.
    fn assert_no_secret(&self) {
        self.assert_none_of(&[PASSWORD, TOKEN, HEADER_VALUE]);
    }

    /// None of `secrets` in stdout, stderr, any file of GLIDEPATH_HOME or a report.
    fn assert_none_of(&self, secrets: &[&str]) {
        let mut places = vec![
            ("stdout".to_owned(), self.stdout.clone().into_bytes()),
            ("stderr".to_owned(), self.stderr.clone().into_bytes()),
        ];
        let journal = files(self.home.path());
        assert!(
            journal
                .iter()
                .any(|(_, bytes)| contains(bytes, b"evaluate: { slo: slo.yaml")),
            "the journal does not hold the run, so scanning it proves nothing"
        );
        places.extend(journal);
        for name in ["report.json", "junit.xml", "summary.md"] {
            let path = self.reports.join(name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            places.push((name.to_owned(), bytes));
        }
        for (place, bytes) in &places {
            for secret in secrets {
                assert!(
                    !contains(bytes, secret.as_bytes()),
                    "{secret} leaked into {place}"
                );
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Runs a one-step pipeline whose `prometheus:` block is `{ url: URL, <extra> }`, with
/// `env` in the child's environment only.
fn run(url: &str, extra: &str, env: &[(&str, &str)]) -> Outcome {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("slo.yaml"), SLO).unwrap();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    let pipeline = format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  prometheus: {{ url: \"{url}\"{extra} }}\n  stages:\n    - name: staging\n      steps:\n        - name: slo\n          evaluate: {{ slo: slo.yaml, window: 5m }}\n"
    );
    let path = work.path().join("shop.yaml");
    std::fs::write(&path, pipeline).unwrap();
    let reports = work.path().join("reports");
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(&path)
        .arg("--headless")
        .arg("--report-dir")
        .arg(&reports)
        .env("GLIDEPATH_HOME", home.path())
        .env_remove("GLIDEPATH_JOURNAL")
        .current_dir(work.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        home,
        reports,
        _work: work,
    }
}

/// A file holding `text`, outside GLIDEPATH_HOME and the reports.
fn secret_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    path.display().to_string()
}

/// Prometheus asking for basic auth as user `ops` with [`PASSWORD`] (bcrypt-hashed).
fn basic_auth_prometheus() -> Prom {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    support::start_with_web(&Web {
        yaml: format!("basic_auth_users:\n  ops: {hash}\n"),
        ca_der: None,
        authorization: Some(format!(
            "Basic {}",
            base64(format!("ops:{PASSWORD}").as_bytes())
        )),
    })
}

/// Standard base64 with padding (for the readiness probe's basic auth header).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn basic_auth_passwords_from_env_and_file_pass_and_wrong_ones_are_named() {
    let prom = basic_auth_prometheus();
    let secrets = tempfile::tempdir().unwrap();
    let from_env = run(
        &prom.url,
        "basicAuth: { username: ops, passwordEnv: GP_TEST_PASSWORD }",
        &[("GP_TEST_PASSWORD", PASSWORD)],
    );
    from_env.assert_passed();
    from_env.assert_no_secret();

    let file = secret_file(&secrets, "password", PASSWORD);
    let from_file = run(
        &prom.url,
        &format!("basicAuth: {{ username: ops, passwordFile: \"{file}\" }}"),
        &[],
    );
    from_file.assert_passed();
    from_file.assert_no_secret();

    let wrong = run(
        &prom.url,
        "basicAuth: { username: ops, passwordEnv: GP_TEST_PASSWORD }",
        &[("GP_TEST_PASSWORD", "not-the-password")],
    );
    wrong.assert_failed_with(&["HTTP 401", "Unauthorized", "did not accept basic auth"]);
    wrong.assert_none_of(&["not-the-password"]);

    let none = run(&prom.url, "", &[]);
    none.assert_failed_with(&["HTTP 401", "no credentials were sent"]);

    let unset = run(
        &prom.url,
        "basicAuth: { username: ops, passwordEnv: GP_TEST_UNSET_PASSWORD }",
        &[],
    );
    unset.assert_failed_with(&[
        "Prometheus settings: basicAuth.passwordEnv: environment variable GP_TEST_UNSET_PASSWORD is not set",
    ]);
}

#[test]
fn credentials_in_the_url_authenticate_and_are_shown_as_stars() {
    let prom = basic_auth_prometheus();
    let host = prom.url.trim_start_matches("http://");
    let with = |password: &str| format!("http://ops:{password}@{host}");
    let right = run(
        "${GP_TEST_PROM_URL}",
        "",
        &[("GP_TEST_PROM_URL", &with(PASSWORD))],
    );
    right.assert_passed();
    right.assert_no_secret();

    // A wrong password: the error names the server, with the credentials starred out.
    let wrong_password = "wrong-url-password";
    let wrong = run(
        "${GP_TEST_PROM_URL}",
        "",
        &[("GP_TEST_PROM_URL", &with(wrong_password))],
    );
    wrong.assert_failed_with(&["HTTP 401", &format!("http://***@{host}")]);
    wrong.assert_none_of(&[wrong_password]);

    // Unreachable: the connection error names the URL without its credentials too.
    let closed = support::free_port();
    let gone = run(
        "${GP_TEST_PROM_URL}",
        "retries: 0",
        &[(
            "GP_TEST_PROM_URL",
            &format!("http://ops:{PASSWORD}@127.0.0.1:{closed}"),
        )],
    );
    gone.assert_failed_with(&[&format!(
        "cannot reach Prometheus at http://***@127.0.0.1:{closed}"
    )]);
    gone.assert_no_secret();
}

/// Test certificates: a CA, a server certificate it signed for localhost and 127.0.0.1,
/// and another CA that signed nothing here.
struct Certs {
    ca_pem: String,
    ca_der: Vec<u8>,
    server_pem: String,
    server_key_pem: String,
    other_ca_pem: String,
}

fn ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, rcgen::Certificate) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    (params, key, cert)
}

fn certs() -> Certs {
    let (ca_params, ca_key, ca_cert) = ca("glidepath test CA");
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server = server_params.signed_by(&server_key, &issuer).unwrap();
    let (_, _, other) = ca("another CA");
    Certs {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().to_vec(),
        server_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        other_ca_pem: other.pem(),
    }
}

#[test]
fn tls_trusts_the_ca_file_refuses_other_cas_and_insecure_skips_the_check() {
    let certs = certs();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = secret_file(&dir, "server.pem", &certs.server_pem);
    let key_file = secret_file(&dir, "server.key", &certs.server_key_pem);
    let prom = support::start_with_web(&Web {
        yaml: format!("tls_server_config:\n  cert_file: {cert_file}\n  key_file: {key_file}\n"),
        ca_der: Some(certs.ca_der.clone()),
        authorization: None,
    });
    assert!(prom.url.starts_with("https://127.0.0.1:"), "{}", prom.url);
    let ca = secret_file(&dir, "ca.pem", &certs.ca_pem);
    run(&prom.url, &format!("caFile: \"{ca}\""), &[]).assert_passed();

    let other = secret_file(&dir, "other-ca.pem", &certs.other_ca_pem);
    let untrusted = run(&prom.url, &format!("caFile: \"{other}\""), &[]);
    untrusted.assert_failed_with(&["cannot trust Prometheus at", "certificate", "caFile"]);
    // Without a CA file the system roots do not know the test CA either.
    run(&prom.url, "", &[]).assert_failed_with(&["cannot trust Prometheus at", "caFile"]);

    run(&prom.url, "insecureSkipVerify: true", &[]).assert_passed();

    let missing = run(&prom.url, "caFile: /no/such/ca.pem", &[]);
    missing.assert_failed_with(&["caFile /no/such/ca.pem"]);
}

/// A reverse proxy on loopback that forwards to Prometheus only requests carrying
/// `header: expected`, and answers the others with `refuse` (401 or 403).
struct Proxy {
    url: String,
    forwarded: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

struct Check {
    header: &'static str,
    expected: String,
    refuse: axum::http::StatusCode,
    upstream: String,
    http: reqwest::Client,
    forwarded: Arc<AtomicUsize>,
}

async fn forward(
    axum::extract::State(check): axum::extract::State<Arc<Check>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let seen = parts
        .headers
        .get(check.header)
        .and_then(|v| v.to_str().ok());
    if seen != Some(check.expected.as_str()) {
        return (check.refuse, "refused by the test proxy\n").into_response();
    }
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = check
        .http
        .request(parts.method, format!("{}{path}", check.upstream))
        .body(body);
    if let Some(ct) = parts.headers.get(axum::http::header::CONTENT_TYPE) {
        request = request.header(axum::http::header::CONTENT_TYPE, ct);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let bytes = answer.bytes().await.unwrap();
    check.forwarded.fetch_add(1, Ordering::SeqCst);
    (status, bytes).into_response()
}

fn proxy(
    upstream: &str,
    header: &'static str,
    expected: &str,
    refuse: axum::http::StatusCode,
) -> Proxy {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let forwarded = Arc::new(AtomicUsize::new(0));
    let check = Arc::new(Check {
        header,
        expected: expected.to_owned(),
        refuse,
        upstream: upstream.to_owned(),
        http: glidepath::tls::http_client().build().unwrap(),
        forwarded: forwarded.clone(),
    });
    let app = axum::Router::new().fallback(forward).with_state(check);
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    Proxy {
        url: format!("http://{addr}"),
        forwarded,
        _runtime: runtime,
    }
}

fn plain_prometheus() -> Prom {
    support::start_with_web(&Web::default())
}

#[test]
fn bearer_tokens_from_env_and_file_pass_the_proxy_and_wrong_ones_are_named() {
    let prom = plain_prometheus();
    let proxy = proxy(
        &prom.url,
        "authorization",
        &format!("Bearer {TOKEN}"),
        axum::http::StatusCode::UNAUTHORIZED,
    );
    let secrets = tempfile::tempdir().unwrap();
    let from_env = run(
        &proxy.url,
        "bearerTokenEnv: GP_TEST_TOKEN",
        &[("GP_TEST_TOKEN", TOKEN)],
    );
    from_env.assert_passed();
    from_env.assert_no_secret();
    let file = secret_file(&secrets, "token", TOKEN);
    let from_file = run(&proxy.url, &format!("bearerTokenFile: \"{file}\""), &[]);
    from_file.assert_passed();
    from_file.assert_no_secret();
    let passed = proxy.forwarded.load(Ordering::SeqCst);
    assert!(passed >= 2, "the proxy forwarded {passed} queries");

    let wrong = run(
        &proxy.url,
        "bearerTokenEnv: GP_TEST_TOKEN",
        &[("GP_TEST_TOKEN", "not-the-token")],
    );
    wrong.assert_failed_with(&["HTTP 401", "Unauthorized", "did not accept a bearer token"]);
    wrong.assert_none_of(&["not-the-token"]);
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), passed);
}

#[test]
fn custom_headers_from_env_and_file_pass_the_proxy_and_wrong_ones_are_named() {
    let prom = plain_prometheus();
    let proxy = proxy(
        &prom.url,
        "x-api-key",
        HEADER_VALUE,
        axum::http::StatusCode::FORBIDDEN,
    );
    let secrets = tempfile::tempdir().unwrap();
    let from_env = run(
        &proxy.url,
        "headers: { X-Api-Key: \"env:GP_TEST_API_KEY\" }",
        &[("GP_TEST_API_KEY", HEADER_VALUE)],
    );
    from_env.assert_passed();
    from_env.assert_no_secret();
    let file = secret_file(&secrets, "api-key", HEADER_VALUE);
    let from_file = run(
        &proxy.url,
        &format!("headers: {{ X-Api-Key: \"file:{file}\" }}"),
        &[],
    );
    from_file.assert_passed();
    from_file.assert_no_secret();
    assert!(proxy.forwarded.load(Ordering::SeqCst) >= 2);

    let wrong = run(
        &proxy.url,
        "headers: { X-Api-Key: \"env:GP_TEST_API_KEY\" }",
        &[("GP_TEST_API_KEY", "not-the-key")],
    );
    wrong.assert_failed_with(&["HTTP 403", "Forbidden", "header X-Api-Key"]);
    wrong.assert_none_of(&["not-the-key"]);
}

#[test]
fn a_port_taken_before_prometheus_binds_it_is_replaced() {
    // The race tests/support/prometheus.rs guards against: the free port it picked is taken
    // by another process before Prometheus binds it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let prom = support::start_with_web_on(&Web::default(), port);
    assert_ne!(prom.url, format!("http://127.0.0.1:{port}"));
    run(&prom.url, "", &[]).assert_passed();
}
