//! An HTTP/1.1 (keep-alive) load generator on tokio and hyper, honest about latency.
//!
//! - Closed model: N connections each sending as fast as answers come (like wrk).
//! - Open model: a constant arrival rate (like wrk2 or vegeta). Requests are scheduled at
//!   their intended send times and latency is measured from that time, so a server that
//!   stalls cannot hide the requests that queued behind the stall (coordinated omission).
//!
//! Every second a [`Progress`] is reported; the end brings a [`Summary`] from an HDR
//! histogram (microseconds, three significant digits) with errors by kind: the status code,
//! `timeout`, `connect`, or `io` (a closed connection, a reply that is not HTTP).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::time::Instant;

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// `connections` loops, each sending its next request when the last is answered.
    Closed {
        /// Concurrent connections.
        connections: usize,
    },
    /// `rate` requests per second at fixed intended times, over at most `connections`.
    Open {
        /// Requests per second.
        rate: f64,
        /// Connections (and so requests in flight) at most.
        connections: usize,
    },
}

/// What to send, how, and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `http://host:port/path?query`.
    pub url: String,
    /// The method.
    pub method: hyper::Method,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// How long to send (after the warm-up).
    pub duration: Duration,
    /// Sent but not counted, at the start.
    pub warmup: Duration,
    /// A request taking longer is an error of kind `timeout`.
    pub timeout: Duration,
    /// The arrival model.
    pub model: Model,
}

/// One second of the test.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Seconds since the measured part began.
    pub second: u64,
    /// Requests answered in this second.
    pub requests: u64,
    /// Of which errors.
    pub errors: u64,
    /// Latency percentiles in this second, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// Latency figures, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

/// The whole test.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Requests counted (after the warm-up).
    pub requests: u64,
    /// Errors by kind (`503`, `timeout`, `connect`, `io`).
    pub errors: BTreeMap<String, u64>,
    /// Seconds measured.
    pub seconds: f64,
    /// Requests per second.
    pub rps: f64,
    /// Errors over requests.
    pub error_ratio: f64,
    /// Latency (open model: from the intended send time).
    pub latency_ms: Latency,
}

impl Summary {
    /// The results as SLIs: `load.error_ratio`, `load.rps`, `load.latency_p50_ms` ...
    pub fn slis(&self) -> BTreeMap<String, f64> {
        let l = &self.latency_ms;
        [
            ("load.error_ratio", self.error_ratio),
            ("load.rps", self.rps),
            ("load.latency_p50_ms", l.p50),
            ("load.latency_p90_ms", l.p90),
            ("load.latency_p95_ms", l.p95),
            ("load.latency_p99_ms", l.p99),
            ("load.latency_p999_ms", l.p999),
            ("load.latency_max_ms", l.max),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

#[allow(clippy::expect_used)] // constant bounds that hdrhistogram accepts
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("1 µs to 1 h at 3 digits is valid")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Shared results.
struct Recorder {
    total: Histogram<u64>,
    second: Histogram<u64>,
    second_errors: u64,
    requests: u64,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    fn record(&mut self, latency: Duration, error: Option<String>) {
        let us = (latency.as_micros() as u64).max(1);
        let _ = self.total.record(us);
        let _ = self.second.record(us);
        self.requests += 1;
        if let Some(kind) = error {
            *self.errors.entry(kind).or_default() += 1;
            self.second_errors += 1;
        }
    }
}

/// Where requests go, parsed once.
struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported by this load generator"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse::<u16>()
                .map_err(|_| format!("{url}: bad port `{p}`"))?,
        ),
        _ => (authority.to_owned(), 80),
    };
    Ok(Target {
        host,
        port,
        authority: authority.to_owned(),
        path: path.to_owned(),
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(t: &Target) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|_| "connect".to_owned())?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|_| "connect".to_owned())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on `conn` (connecting first when there is none); the error kind on failure.
async fn once(plan: &Plan, t: &Target, conn: &mut Option<Sender>) -> Option<String> {
    let work = async {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            *conn = Some(connect(t).await?);
        }
        let Some(sender) = conn.as_mut() else {
            return Err("connect".to_owned());
        };
        sender.ready().await.map_err(|_| "io".to_owned())?;
        let mut req = hyper::Request::builder()
            .method(plan.method.clone())
            .uri(t.path.as_str())
            .header(hyper::header::HOST, t.authority.as_str());
        for (k, v) in &plan.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(plan.body.clone()))
            .map_err(|_| "io".to_owned())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|_| "io".to_owned())?;
        let status = resp.status();
        resp.into_body()
            .collect()
            .await
            .map_err(|_| "io".to_owned())?;
        Ok(status)
    };
    match tokio::time::timeout(plan.timeout, work).await {
        Ok(Ok(status)) if status.is_client_error() || status.is_server_error() => {
            Some(status.as_u16().to_string())
        }
        Ok(Ok(_)) => None,
        Ok(Err(kind)) => {
            *conn = None;
            Some(kind)
        }
        Err(_) => {
            *conn = None;
            Some("timeout".into())
        }
    }
}

/// Runs the plan; `progress` hears about every second. Invalid URLs are refused at once;
/// unreachable or misbehaving servers are counted as errors and the test ends on time.
pub async fn run(
    plan: Plan,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<Summary, String> {
    let t = Arc::new(target(&plan.url)?);
    let plan = Arc::new(plan);
    let rec = Arc::new(Mutex::new(Recorder {
        total: histogram(),
        second: histogram(),
        second_errors: 0,
        requests: 0,
        errors: BTreeMap::new(),
    }));
    let start = Instant::now();
    let measured_from = start + plan.warmup;
    let end = measured_from + plan.duration;
    let record = {
        let rec = rec.clone();
        move |at: Instant, latency: Duration, error: Option<String>| {
            if at >= measured_from
                && let Ok(mut r) = rec.lock()
            {
                r.record(latency, error);
            }
        }
    };
    // Per-second progress.
    let ticker = {
        let rec = rec.clone();
        tokio::spawn(async move {
            let mut second = 0;
            let mut next = measured_from + Duration::from_secs(1);
            while next <= end {
                tokio::time::sleep_until(next).await;
                second += 1;
                let p = match rec.lock() {
                    Ok(mut r) => {
                        let p = Progress {
                            second,
                            requests: r.second.len(),
                            errors: r.second_errors,
                            p50_ms: ms(&r.second, 0.5),
                            p95_ms: ms(&r.second, 0.95),
                            p99_ms: ms(&r.second, 0.99),
                        };
                        r.second.reset();
                        r.second_errors = 0;
                        p
                    }
                    Err(_) => break,
                };
                progress(p);
                next += Duration::from_secs(1);
            }
        })
    };
    let mut workers = Vec::new();
    match plan.model {
        Model::Closed { connections } => {
            for _ in 0..connections.max(1) {
                let (plan, t, record) = (plan.clone(), t.clone(), record.clone());
                workers.push(tokio::spawn(async move {
                    let mut conn = None;
                    while Instant::now() < end {
                        let sent = Instant::now();
                        let error = once(&plan, &t, &mut conn).await;
                        record(sent, sent.elapsed(), error);
                    }
                }));
            }
        }
        Model::Open { rate, connections } => {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(format!(
                    "the rate must be a positive number of requests per second, not {rate}"
                ));
            }
            // The scheduler releases intended send times; workers take them in order, so a
            // stall makes the queue grow and every queued request counts its wait.
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let interval = Duration::from_secs_f64(1.0 / rate);
            workers.push(tokio::spawn(async move {
                let mut i: u32 = 0;
                loop {
                    let intended = start + interval * i;
                    if intended >= end {
                        break;
                    }
                    tokio::time::sleep_until(intended).await;
                    if tx.send(intended).is_err() {
                        break;
                    }
                    i = i.saturating_add(1);
                }
            }));
            for _ in 0..connections.max(1) {
                let (plan, t, record, rx) = (plan.clone(), t.clone(), record.clone(), rx.clone());
                workers.push(tokio::spawn(async move {
                    let mut conn = None;
                    loop {
                        let next = rx.lock().await.recv().await;
                        let Some(intended) = next else {
                            break;
                        };
                        if Instant::now() >= end + plan.timeout {
                            // Past the end: what is still queued is not sent.
                            continue;
                        }
                        let error = once(&plan, &t, &mut conn).await;
                        record(intended, intended.elapsed(), error);
                    }
                }));
            }
        }
    }
    // Everything stops on time: at the end, plus one timeout for requests in flight.
    let deadline = end + plan.timeout + Duration::from_millis(100);
    for w in workers {
        let _ = tokio::time::timeout_at(deadline, w).await;
    }
    // The last second is reported before the summary.
    let _ = tokio::time::timeout_at(deadline + Duration::from_secs(1), ticker).await;
    let r = rec
        .lock()
        .map_err(|_| "the recorder was poisoned".to_owned())?;
    let seconds = plan.duration.as_secs_f64();
    let errors: u64 = r.errors.values().sum();
    let h = &r.total;
    Ok(Summary {
        requests: r.requests,
        errors: r.errors.clone(),
        seconds,
        rps: r.requests as f64 / seconds,
        error_ratio: if r.requests == 0 {
            0.0
        } else {
            errors as f64 / r.requests as f64
        },
        latency_ms: Latency {
            min: if h.is_empty() {
                0.0
            } else {
                h.min() as f64 / 1000.0
            },
            mean: h.mean() / 1000.0,
            p50: ms(h, 0.5),
            p90: ms(h, 0.9),
            p95: ms(h, 0.95),
            p99: ms(h, 0.99),
            p999: ms(h, 0.999),
            max: h.max() as f64 / 1000.0,
        },
    })
}
