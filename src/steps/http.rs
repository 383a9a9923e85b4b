//! `test` with `http`: a smoke suite. Each check is a request whose answer must meet its
//! expectations (status, body text, JSON pointers, latency), retried with backoff; each
//! check's result is a line of evidence in the gate.

use std::time::Duration;

use tokio::time::Instant;

use super::{StepCtx, StepResult};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::{HttpCheck, HttpSuite};
use crate::units::format_duration;

/// Runs every check of the suite in order.
pub async fn run(suite: &HttpSuite, ctx: &mut StepCtx) -> StepResult {
    let client = match crate::tls::http_client().build() {
        Ok(c) => c,
        Err(e) => {
            return StepResult {
                infra_error: true,
                ..StepResult::failed(format!("cannot build an HTTP client: {e}"))
            };
        }
    };
    let mut evidence = Vec::new();
    let mut endpoints = super::endpoints::ServiceEndpoints::new(ctx, "http").await;
    for check in &suite.checks {
        let url = match resolve_url(suite.base_url.as_deref(), &check.url) {
            Ok(u) => u,
            Err(e) => {
                evidence.push(Evidence::new(&check.name, Verdict::Fail, e.to_string()));
                continue;
            }
        };
        let url = match endpoints.rewrite(url.as_str()).await {
            Some(u) => reqwest::Url::parse(&u).unwrap_or(url),
            None => url,
        };
        evidence.push(run_check(&client, suite, &check.value, url, ctx).await);
    }
    let failed: Vec<&str> = evidence
        .iter()
        .filter(|e| e.verdict != Verdict::Pass)
        .map(|e| e.check.as_str())
        .collect();
    let total = evidence.len();
    if failed.is_empty() {
        StepResult::judged(
            Verdict::Pass,
            format!("smoke {total}/{total} passed"),
            evidence,
        )
    } else {
        StepResult::judged(
            Verdict::Fail,
            format!(
                "smoke {}/{total} passed; failed: {}",
                total - failed.len(),
                failed.join(", ")
            ),
            evidence,
        )
    }
}

/// Why a check did not pass: what was wrong with the request or the answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckFailure {
    /// The URL (with the suite's base) does not parse.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as written.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// No answer within the check's timeout.
    #[error("no answer within {0}")]
    NoAnswer(String),
    /// The request failed (connection refused, TLS): the error with its sources.
    #[error("{0}")]
    Unreachable(String),
    /// The answer's body could not be read.
    #[error("reading the body failed: {0}")]
    BodyUnreadable(String),
    /// A status the check does not expect.
    #[error("status {status} in {ms} ms")]
    Status {
        /// The HTTP status.
        status: u16,
        /// How long the answer took.
        ms: u128,
    },
    /// The body lacks the expected text.
    #[error("status {status}, body does not contain {text:?}")]
    BodyLacks {
        /// The HTTP status.
        status: u16,
        /// The expected text.
        text: String,
    },
    /// The body should be JSON and is not.
    #[error("status {status}, body is not JSON ({reason})")]
    NotJson {
        /// The HTTP status.
        status: u16,
        /// The parser's complaint.
        reason: String,
    },
    /// A JSON pointer holds another value than expected.
    #[error("status {status}, {pointer} is {found}, expected {expected}")]
    JsonMismatch {
        /// The HTTP status.
        status: u16,
        /// The JSON pointer.
        pointer: String,
        /// What it holds (`nothing` when absent).
        found: String,
        /// What it should hold.
        expected: String,
    },
    /// The answer came, but slower than allowed.
    #[error("status {status} in {ms} ms, slower than {max}")]
    TooSlow {
        /// The HTTP status.
        status: u16,
        /// How long the answer took.
        ms: u128,
        /// The limit, as written.
        max: String,
    },
}

fn resolve_url(base: Option<&str>, url: &str) -> Result<reqwest::Url, CheckFailure> {
    let parsed = match base {
        Some(base) if !url.contains("://") => reqwest::Url::parse(base).and_then(|b| b.join(url)),
        _ => reqwest::Url::parse(url),
    };
    parsed.map_err(|e| CheckFailure::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

async fn run_check(
    client: &reqwest::Client,
    suite: &HttpSuite,
    check: &HttpCheck,
    url: reqwest::Url,
    ctx: &StepCtx,
) -> Evidence {
    let method = check
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let label = format!("{} {}", check.name, method);
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return Evidence::new(
            &check.name,
            Verdict::Fail,
            format!("invalid HTTP method `{method}`"),
        );
    };
    let timeout = check
        .timeout
        .or(suite.defaults.timeout)
        .map(|t| t.get())
        .unwrap_or(Duration::from_secs(10));
    let retries = check.retries.or(suite.defaults.retries).unwrap_or(0);
    let mut backoff = check
        .backoff
        .or(suite.defaults.backoff)
        .map(|b| b.get())
        .unwrap_or(Duration::from_millis(500));
    let expected = describe_expectations(check);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (outcome, took) = attempt_once(client, suite, check, &method, &url, timeout).await;
        match outcome {
            Ok(found) => {
                ctx.io.log("http", format!("✓ {label} {url} → {found}"));
                return Evidence::new(&check.name, Verdict::Pass, found).expected(expected);
            }
            Err(why) if attempt > retries => {
                ctx.io.log(
                    "http",
                    format!("✗ {label} {url} → {why} ({} ms)", took.as_millis()),
                );
                let tries = if attempt == 1 {
                    String::new()
                } else {
                    format!(" after {attempt} attempts")
                };
                return Evidence::new(&check.name, Verdict::Fail, why.to_string())
                    .expected(expected)
                    .detail(format!("{method} {url}{tries}"));
            }
            Err(why) => {
                ctx.io.log(
                    "http",
                    format!(
                        "↻ {label} {url} → {why}; retry {attempt}/{retries} in {}",
                        format_duration(backoff)
                    ),
                );
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
    }
}

/// Sends the check's request once and judges the answer (Err says what went wrong), with
/// how long it took.
async fn attempt_once(
    client: &reqwest::Client,
    suite: &HttpSuite,
    check: &HttpCheck,
    method: &reqwest::Method,
    url: &reqwest::Url,
    timeout: Duration,
) -> (Result<String, CheckFailure>, Duration) {
    let mut req = client.request(method.clone(), url.clone()).timeout(timeout);
    for (k, v) in suite.defaults.headers.iter().chain(&check.headers) {
        req = req.header(k, v);
    }
    if let Some(body) = &check.body {
        req = req.body(body.clone());
    }
    if let Some(json) = &check.json {
        req = req.json(json);
    }
    let started = Instant::now();
    let outcome = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text().await {
                Ok(body) => judge(check, status, &body, started.elapsed()),
                Err(e) => Err(CheckFailure::BodyUnreadable(crate::metrics::error_chain(
                    &e,
                ))),
            }
        }
        Err(e) => Err(if e.is_timeout() {
            CheckFailure::NoAnswer(format_duration(timeout))
        } else {
            CheckFailure::Unreachable(crate::metrics::error_chain(&e))
        }),
    };
    (outcome, started.elapsed())
}

/// Checks one response; Ok says what was found, Err what was wrong.
fn judge(
    check: &HttpCheck,
    status: u16,
    body: &str,
    took: Duration,
) -> Result<String, CheckFailure> {
    let ms = took.as_millis();
    let status_ok = if check.expect.status.is_empty() {
        (200..300).contains(&status)
    } else {
        check.expect.status.contains(&status)
    };
    if !status_ok {
        return Err(CheckFailure::Status { status, ms });
    }
    if let Some(text) = &check.expect.body_contains
        && !body.contains(text.as_str())
    {
        return Err(CheckFailure::BodyLacks {
            status,
            text: text.clone(),
        });
    }
    if !check.expect.json.is_empty() {
        let doc: serde_json::Value =
            serde_json::from_str(body).map_err(|e| CheckFailure::NotJson {
                status,
                reason: e.to_string(),
            })?;
        for (pointer, want) in &check.expect.json {
            let got = doc.pointer(pointer);
            if !json_equals(got, want) {
                let shown = got
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "nothing".into());
                return Err(CheckFailure::JsonMismatch {
                    status,
                    pointer: pointer.clone(),
                    found: shown,
                    expected: want.to_string(),
                });
            }
        }
    }
    if let Some(max) = check.expect.max_latency
        && took > max.get()
    {
        return Err(CheckFailure::TooSlow {
            status,
            ms,
            max: max.to_string(),
        });
    }
    Ok(format!("status {status} in {ms} ms"))
}

/// Equality where a YAML scalar written as `ok` or `200` matches the JSON string or number.
fn json_equals(got: Option<&serde_json::Value>, want: &serde_json::Value) -> bool {
    match (got, want) {
        (Some(g), w) if g == w => true,
        (Some(serde_json::Value::Number(g)), serde_json::Value::String(w)) => {
            w.parse::<f64>().ok() == g.as_f64()
        }
        (
            Some(serde_json::Value::String(g)),
            w @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)),
        ) => g.as_str() == w.to_string().as_str(),
        _ => false,
    }
}

fn describe_expectations(check: &HttpCheck) -> String {
    let mut parts = vec![if check.expect.status.is_empty() {
        "status 2xx".to_owned()
    } else {
        format!(
            "status {}",
            check
                .expect
                .status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join("|")
        )
    }];
    if let Some(t) = &check.expect.body_contains {
        parts.push(format!("body contains {t:?}"));
    }
    for (p, v) in &check.expect.json {
        parts.push(format!("{p} = {v}"));
    }
    if let Some(max) = check.expect.max_latency {
        parts.push(format!("within {max}"));
    }
    parts.join(", ")
}
