//! The Prometheus HTTP API client: instant and range queries as form POSTs, with bearer,
//! basic or header auth read from the environment or files (never logged), a custom CA or
//! an explicit `insecureSkipVerify`, timeouts, and retries with backoff on 5xx and timeouts.
//! Prometheus's own error bodies (`errorType`, `error`) reach the user as they are.
//!
//! An empty result or NaN is "no data" (`None`): callers turn it into an `error` verdict,
//! never a pass. An instant query's ±Inf is kept as a value (it never passes a gate); in a
//! range query's points it is no data.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

pub mod settings;

use settings::Prometheus as Settings;

/// A secret: shown as `***` everywhere.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What went wrong with a query.
#[derive(Debug, Error)]
pub enum QueryError {
    /// Prometheus answered with an error body.
    #[error("Prometheus refused the query ({error_type}, HTTP {status}): {error}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `bad_data`, `execution`, `timeout`...
        error_type: String,
        /// Prometheus's message.
        error: String,
    },
    /// It could not be reached or did not answer in time.
    #[error("cannot reach Prometheus at {url}: {reason}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// It answered something that is not the Prometheus API.
    #[error("unexpected answer from {url} (HTTP {status}): {detail}")]
    BadResponse {
        /// The base URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// What was wrong, with the start of the body.
        detail: String,
    },
    /// It refused the request: HTTP 401 or 403, the credentials are missing or wrong.
    #[error("Prometheus at {url} refused the request (HTTP {status}): {hint}")]
    Refused {
        /// The base URL, without credentials.
        url: String,
        /// 401 or 403.
        status: u16,
        /// What to check in the `prometheus` block.
        hint: String,
    },
    /// Its TLS certificate is not trusted, or the TLS handshake failed.
    #[error("cannot trust Prometheus at {url}: {reason}; {hint}")]
    Tls {
        /// The base URL, without credentials.
        url: String,
        /// What rustls said.
        reason: String,
        /// What to do.
        hint: &'static str,
    },
    /// The settings cannot be used (a missing secret, a bad CA file).
    #[error("Prometheus settings: {0}")]
    Config(String),
}

impl QueryError {
    /// Worth another try: 5xx, timeouts, connection failures.
    fn transient(&self) -> bool {
        match self {
            QueryError::Api { status, .. } | QueryError::BadResponse { status, .. } => {
                *status >= 500
            }
            QueryError::Unreachable { .. } => true,
            QueryError::Refused { .. } | QueryError::Tls { .. } | QueryError::Config(_) => false,
        }
    }
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value; None for NaN (±Inf is kept: it never passes).
    pub value: Option<f64>,
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// (unix seconds, value; None for NaN and ±Inf).
    pub points: Vec<(f64, Option<f64>)>,
}

/// A client for one Prometheus.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The URL requests go to; it may carry `user:password@`, so it is never shown.
    endpoint: Secret,
    /// The URL errors and logs show: `endpoint` with any credentials replaced by `***`.
    base: String,
    bearer: Option<Secret>,
    basic: Option<(String, Secret)>,
    headers: Vec<(String, Secret)>,
    retries: u32,
    backoff: Duration,
}

fn read_secret(how: &str, name: &str, from_env: bool) -> Result<Secret, QueryError> {
    let value = if from_env {
        std::env::var(name).map_err(|_| {
            QueryError::Config(format!("{how}: environment variable {name} is not set"))
        })?
    } else {
        std::fs::read_to_string(name)
            .map_err(|e| QueryError::Config(format!("{how}: cannot read {name}: {e}")))?
    };
    Ok(Secret(value.trim().to_owned()))
}

impl Client {
    /// A client with default settings for `url`.
    pub fn new(url: &str) -> Result<Client, QueryError> {
        Client::from_settings(&Settings {
            url: url.to_owned(),
            bearer_token_env: None,
            bearer_token_file: None,
            basic_auth: None,
            retries: None,
            headers: BTreeMap::new(),
            timeout: None,
            ca_file: None,
            insecure_skip_verify: false,
        })
    }

    /// A client from a pipeline's `prometheus` settings; secrets are read now.
    pub fn from_settings(s: &Settings) -> Result<Client, QueryError> {
        let timeout = s
            .timeout
            .map(|t| t.get())
            .unwrap_or(Duration::from_secs(30));
        let mut builder = crate::tls::http_client().timeout(timeout);
        if let Some(ca) = &s.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| QueryError::Config(format!("caFile {ca}: {e}")))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| QueryError::Config(format!("caFile {ca}: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if s.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| QueryError::Config(e.to_string()))?;
        let bearer = match (&s.bearer_token_env, &s.bearer_token_file) {
            (Some(env), _) => Some(read_secret("bearerTokenEnv", env, true)?),
            (None, Some(file)) => Some(read_secret("bearerTokenFile", file, false)?),
            _ => None,
        };
        let basic = match &s.basic_auth {
            Some(b) => {
                let password = match (&b.password_env, &b.password_file) {
                    (Some(env), _) => read_secret("basicAuth.passwordEnv", env, true)?,
                    (None, Some(file)) => read_secret("basicAuth.passwordFile", file, false)?,
                    _ => Secret(String::new()),
                };
                Some((b.username.clone(), password))
            }
            None => None,
        };
        let mut headers = Vec::new();
        for (k, v) in &s.headers {
            let value = if let Some(env) = v.strip_prefix("env:") {
                read_secret(&format!("header {k}"), env, true)?
            } else if let Some(file) = v.strip_prefix("file:") {
                read_secret(&format!("header {k}"), file, false)?
            } else {
                Secret(v.clone())
            };
            headers.push((k.clone(), value));
        }
        let endpoint = s.url.trim_end_matches('/').to_owned();
        Ok(Client {
            http,
            base: redact_url(&endpoint),
            endpoint: Secret(endpoint),
            bearer,
            basic,
            headers,
            retries: s.retries.unwrap_or(3),
            backoff: Duration::from_millis(200),
        })
    }

    /// The base URL, with any credentials in it replaced by `***`.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<serde_json::Value, QueryError> {
        let mut wait = self.backoff;
        let mut attempt = 0;
        loop {
            match self.post_once(path, form).await {
                Err(e) if e.transient() && attempt < self.retries => {
                    attempt += 1;
                    tracing::debug!(
                        "Prometheus query failed ({e}); retry {attempt}/{}",
                        self.retries
                    );
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    async fn post_once(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<serde_json::Value, QueryError> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.endpoint.0))
            .form(form);
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(&t.0);
        }
        if let Some((user, pass)) = &self.basic {
            req = req.basic_auth(user, Some(&pass.0));
        }
        for (k, v) in &self.headers {
            req = req.header(k, &v.0);
        }
        let resp = req.send().await.map_err(|e| self.send_error(e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.refused(status));
        }
        let body = resp.text().await.map_err(|e| QueryError::Unreachable {
            url: self.base.clone(),
            reason: error_chain(&e.without_url()),
        })?;
        let doc: serde_json::Value = match serde_json::from_str(&body) {
            Ok(d) => d,
            Err(_) => {
                let start: String = body.chars().take(80).collect();
                return Err(QueryError::BadResponse {
                    url: self.base.clone(),
                    status,
                    detail: format!("not the Prometheus API (the body starts {start:?})"),
                });
            }
        };
        if doc.get("status").and_then(|s| s.as_str()) == Some("success") {
            return Ok(doc.get("data").cloned().unwrap_or(serde_json::Value::Null));
        }
        match (
            doc.get("errorType").and_then(|e| e.as_str()),
            doc.get("error").and_then(|e| e.as_str()),
        ) {
            (Some(t), Some(e)) => Err(QueryError::Api {
                status,
                error_type: t.to_owned(),
                error: e.to_owned(),
            }),
            _ => Err(QueryError::BadResponse {
                url: self.base.clone(),
                status,
                detail: "a JSON body without status success or an error".into(),
            }),
        }
    }

    /// Why a request got no answer; a certificate rustls refused is told apart, since
    /// retrying cannot help and the fix is in the settings. The URL is left out of
    /// reqwest's message: `self.base` names it without credentials.
    fn send_error(&self, e: reqwest::Error) -> QueryError {
        if e.is_timeout() {
            return QueryError::Unreachable {
                url: self.base.clone(),
                reason: "no answer in time".into(),
            };
        }
        let e = e.without_url();
        match rustls_error(&e) {
            Some(tls) => QueryError::Tls {
                url: self.base.clone(),
                reason: tls.to_string(),
                hint: "set caFile to the PEM of the CA that signed its certificate (or, for a test server only, insecureSkipVerify: true)",
            },
            None => QueryError::Unreachable {
                url: self.base.clone(),
                reason: error_chain(&e),
            },
        }
    }

    /// A 401 or 403, with what was sent so the user knows what to fix.
    fn refused(&self, status: u16) -> QueryError {
        let mut sent = Vec::new();
        if self.bearer.is_some() {
            sent.push("a bearer token".to_owned());
        }
        if self.basic.is_some() {
            sent.push("basic auth".to_owned());
        }
        if self.endpoint.0 != self.base {
            sent.push("credentials in the URL".to_owned());
        }
        for (k, _) in &self.headers {
            sent.push(format!("header {k}"));
        }
        let word = if status == 401 {
            "Unauthorized"
        } else {
            "Forbidden"
        };
        let hint = if sent.is_empty() {
            format!(
                "{word}; no credentials were sent: add bearerTokenEnv, bearerTokenFile, basicAuth or headers to the prometheus block"
            )
        } else {
            format!(
                "{word}; it did not accept {}: check those values in the prometheus block",
                sent.join(", ")
            )
        };
        QueryError::Refused {
            url: self.base.clone(),
            status,
            hint,
        }
    }

    /// An instant query, at `at` (unix seconds) or now.
    pub async fn query(&self, promql: &str, at: Option<f64>) -> Result<Vec<Sample>, QueryError> {
        let mut form = vec![("query", promql.to_owned())];
        if let Some(t) = at {
            form.push(("time", format!("{t}")));
        }
        let data = self.post("/api/v1/query", &form).await?;
        parse_instant(&data).map_err(|detail| QueryError::BadResponse {
            url: self.base.clone(),
            status: 200,
            detail,
        })
    }

    /// The one value of a query that should return one series (or a scalar). None: no data.
    pub async fn value(&self, promql: &str, at: Option<f64>) -> Result<Option<f64>, QueryError> {
        let samples = self.query(promql, at).await?;
        match samples.as_slice() {
            [] => Ok(None),
            [one] => Ok(one.value),
            many => Err(QueryError::BadResponse {
                url: self.base.clone(),
                status: 200,
                detail: format!(
                    "the query returned {} series; an SLI must return one (aggregate it with sum or max)",
                    many.len()
                ),
            }),
        }
    }

    /// A range query.
    pub async fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<RangeSeries>, QueryError> {
        let form = vec![
            ("query", promql.to_owned()),
            ("start", format!("{start}")),
            ("end", format!("{end}")),
            ("step", format!("{}", step.as_secs_f64())),
        ];
        let data = self.post("/api/v1/query_range", &form).await?;
        parse_matrix(&data).map_err(|detail| QueryError::BadResponse {
            url: self.base.clone(),
            status: 200,
            detail,
        })
    }
}

/// The rustls error under a request error, if the TLS handshake failed. rustls errors
/// arrive wrapped in an `io::Error`, whose `source()` skips the wrapped error itself.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// `scheme://user:password@host/...` with the user and password replaced by `***`, so a
/// URL can be shown; any other string is returned as it is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// An error with its sources (reqwest keeps "connection refused" two levels down).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        source = s.source();
    }
    out
}

/// `"0.02"`, `"NaN"`, `"+Inf"`: numbers come as strings; NaN is no data, ±Inf is kept.
fn number(v: &serde_json::Value) -> Result<Option<f64>, String> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("a sample value is {v}, not a string"))?;
    let x: f64 = match text {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        t => t
            .parse()
            .map_err(|_| format!("a sample value {t:?} is not a number"))?,
    };
    Ok((!x.is_nan()).then_some(x))
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

fn labels(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.get("metric")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn pair(v: &serde_json::Value) -> Result<(f64, Option<f64>), String> {
    let arr = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("a sample is {v}, not [time, value]"))?;
    let t = arr[0].as_f64().ok_or("a sample time is not a number")?;
    Ok((t, number(&arr[1])?))
}

fn parse_instant(data: &serde_json::Value) -> Result<Vec<Sample>, String> {
    let d: Data =
        serde_json::from_value(data.clone()).map_err(|e| format!("no resultType/result: {e}"))?;
    match d.result_type.as_str() {
        "vector" => d
            .result
            .as_array()
            .ok_or("a vector result is not a list")?
            .iter()
            .map(|s| {
                Ok(Sample {
                    labels: labels(s),
                    value: pair(s.get("value").ok_or("a sample has no value")?)?.1,
                })
            })
            .collect(),
        "scalar" => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: pair(&d.result)?.1,
        }]),
        other => Err(format!(
            "an instant query returned a {other}; an SLI must be a vector or a scalar"
        )),
    }
}

fn parse_matrix(data: &serde_json::Value) -> Result<Vec<RangeSeries>, String> {
    let d: Data =
        serde_json::from_value(data.clone()).map_err(|e| format!("no resultType/result: {e}"))?;
    if d.result_type != "matrix" {
        return Err(format!("a range query returned a {}", d.result_type));
    }
    d.result
        .as_array()
        .ok_or("a matrix result is not a list")?
        .iter()
        .map(|s| {
            let points = s
                .get("values")
                .and_then(|v| v.as_array())
                .ok_or("a series has no values")?
                .iter()
                .map(|p| pair(p).map(|(t, v)| (t, v.filter(|x| x.is_finite()))))
                .collect::<Result<_, _>>()?;
            Ok(RangeSeries {
                labels: labels(s),
                points,
            })
        })
        .collect()
}

/// Fills `${name}` in a query or manifest template; `$${` is a literal `${`. Unknown names
/// stay as written: loading a pipeline refuses them before a run gets here.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> String {
    // A character no YAML or PromQL text holds stands in for the escaped `${` meanwhile.
    const LITERAL: &str = "\u{0}";
    let mut out = template.replace("$${", LITERAL);
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out.replace(LITERAL, "${")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nan_and_empty_are_no_data_and_inf_is_kept() {
        let v = json!({"resultType": "vector", "result": [{"metric": {"a": "b"}, "value": [1.0, "NaN"]}]});
        assert_eq!(parse_instant(&v).unwrap()[0].value, None);
        let v = json!({"resultType": "scalar", "result": [1.0, "+Inf"]});
        assert_eq!(parse_instant(&v).unwrap()[0].value, Some(f64::INFINITY));
        let v = json!({"resultType": "matrix", "result": [{"metric": {}, "values": [[1.0, "+Inf"], [2.0, "1"]]}]});
        assert_eq!(
            parse_matrix(&v).unwrap()[0].points,
            vec![(1.0, None), (2.0, Some(1.0))]
        );
        let v = json!({"resultType": "vector", "result": []});
        assert!(parse_instant(&v).unwrap().is_empty());
        let v = json!({"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "0.02"]}]});
        assert_eq!(parse_instant(&v).unwrap()[0].value, Some(0.02));
        let v = json!({"resultType": "string", "result": [1.0, "x"]});
        assert!(parse_instant(&v).is_err());
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "***");
        let c = Client::new("http://127.0.0.1:1").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("http://admin:hunter2@127.0.0.1:9090/prom"),
            "http://***@127.0.0.1:9090/prom"
        );
        assert_eq!(redact_url("https://tok@h"), "https://***@h");
        assert_eq!(redact_url("http://h:9090/a@b"), "http://h:9090/a@b");
        assert_eq!(redact_url("not a url"), "not a url");
        let c = Client::new("http://admin:hunter2@127.0.0.1:1/").unwrap();
        assert_eq!(c.url(), "http://***@127.0.0.1:1");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn templates_fill_known_names() {
        let vars = BTreeMap::from([
            ("service".to_owned(), "checkout".to_owned()),
            ("window".to_owned(), "5m".to_owned()),
        ]);
        assert_eq!(
            render("rate(x{service=\"${service}\"}[${window}])", &vars),
            "rate(x{service=\"checkout\"}[5m])"
        );
        assert_eq!(
            render("echo $${service} ${service}", &vars),
            "echo ${service} checkout"
        );
    }
}
