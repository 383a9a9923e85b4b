//! An HTTP load generator on tokio and hyper, honest about latency: HTTP/1.1 keep-alive or
//! HTTP/2, cleartext or TLS (rustls).
//!
//! - Closed model: N connections each sending as fast as answers come (like wrk).
//! - Open model: a constant arrival rate (like wrk2 or vegeta), or a rate that ramps over
//!   stages. Requests are scheduled at their intended send times and latency is measured
//!   from that time, so a server that stalls cannot hide the requests that queued behind
//!   the stall (coordinated omission).
//! - Requests come from a weighted list (method, URL, headers, body).
//!
//! Every second a [`Progress`] is reported; the end brings a [`Summary`] from an HDR
//! histogram (microseconds, three significant digits) with errors by kind: the status code,
//! `timeout`, `connect`, `tls`, or `io` (a closed connection, a reply that is not HTTP).

mod conn;
pub mod model;
mod schedule;
mod spec;

pub use conn::{Protocol, Request, TlsOptions};
pub use schedule::RampStage;
pub use spec::plan_for;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use conn::{Origin, Prepared, Sender};
use schedule::Arrivals;

/// How requests arrive.
#[derive(Debug, Clone, PartialEq)]
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
    /// An open model whose rate starts at `from` (during the warm-up too) and moves
    /// linearly through the stages; the test lasts as long as the stages together.
    Ramp {
        /// Requests per second at the start.
        from: f64,
        /// Where the rate goes, stage by stage.
        stages: Vec<RampStage>,
        /// Connections (and so requests in flight) at most.
        connections: usize,
    },
}

/// What to send, how, and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The requests, each sent in proportion to its weight.
    pub requests: Vec<Request>,
    /// HTTP/1.1 or HTTP/2.
    pub protocol: Protocol,
    /// How `https` servers are trusted.
    pub tls: TlsOptions,
    /// How long to send (after the warm-up); a ramp lasts as long as its stages.
    pub duration: Duration,
    /// Sent but not counted, at the start.
    pub warmup: Duration,
    /// A request taking longer is an error of kind `timeout`.
    pub timeout: Duration,
    /// The arrival model.
    pub model: Model,
}

impl Plan {
    /// GETs of one URL, with a 10 s timeout and no warm-up.
    pub fn get(url: impl Into<String>, model: Model, duration: Duration) -> Self {
        Plan {
            requests: vec![Request::get(url)],
            protocol: Protocol::Http1,
            tls: TlsOptions::default(),
            duration,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(10),
            model,
        }
    }

    /// The measured part: the duration, or a ramp's stages together.
    pub fn measured(&self) -> Duration {
        match &self.model {
            Model::Ramp { stages, .. } => stages.iter().map(|s| s.duration).sum(),
            _ => self.duration,
        }
    }
}

/// One second of the test.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Seconds since the measured part began.
    pub second: u64,
    /// Requests that ended in this second.
    pub requests: u64,
    /// Of which errors.
    pub errors: u64,
    /// Latency percentiles in this second, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The measured part so far, as the final summary would say it now.
    pub so_far: Summary,
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
    /// Of which answered with a status (any code); connection, TLS and I/O failures and
    /// timeouts are not.
    pub answered: u64,
    /// Errors by kind (`503`, `timeout`, `connect`, `tls`, `io`).
    pub errors: BTreeMap<String, u64>,
    /// Seconds measured.
    pub seconds: f64,
    /// Answered requests per second (failures that got no answer do not count).
    pub rps: f64,
    /// Errors over requests.
    pub error_ratio: f64,
    /// Latency of answered and timed-out requests (open model: from the intended send
    /// time); failures that got no answer have no latency.
    pub latency_ms: Latency,
}

/// The SLIs a load test measures, as `evaluate` and canary `analysis` objectives name them.
pub const SLI_NAMES: [&str; 8] = [
    "load.error_ratio",
    "load.rps",
    "load.latency_p50_ms",
    "load.latency_p90_ms",
    "load.latency_p95_ms",
    "load.latency_p99_ms",
    "load.latency_p999_ms",
    "load.latency_max_ms",
];

impl Summary {
    /// The results as SLIs, named as in [`SLI_NAMES`]. No data is `None`, never 0: the
    /// latencies when no request was answered (an empty histogram has no p95), the error
    /// ratio and the rate when no request was sent.
    pub fn slis(&self) -> BTreeMap<String, Option<f64>> {
        let l = &self.latency_ms;
        let sent = (self.requests > 0).then_some(());
        let answered = (self.answered > 0).then_some(());
        let values = [
            sent.map(|()| self.error_ratio),
            sent.map(|()| self.rps),
            answered.map(|()| l.p50),
            answered.map(|()| l.p90),
            answered.map(|()| l.p95),
            answered.map(|()| l.p99),
            answered.map(|()| l.p999),
            answered.map(|()| l.max),
        ];
        SLI_NAMES
            .iter()
            .zip(values)
            .map(|(k, v)| ((*k).to_owned(), v))
            .collect()
    }

    /// Why some SLIs have no data, naming them; None when every SLI has a value.
    pub fn no_data(&self) -> Option<String> {
        if self.requests == 0 {
            Some("no request was sent: every load SLI has no data".to_owned())
        } else if self.answered == 0 {
            Some(format!(
                "the target answered none of {} requests: load.latency_* have no data",
                self.requests
            ))
        } else {
            None
        }
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

/// How a request failed.
enum Failure {
    Status(u16),
    Kind(&'static str),
}

/// One worker's results; the ticker takes each second's share once a second.
struct Recorder {
    total: Histogram<u64>,
    second: Histogram<u64>,
    second_requests: u64,
    second_answered: u64,
    second_errors: BTreeMap<String, u64>,
    requests: u64,
    answered: u64,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            total: histogram(),
            second: histogram(),
            second_requests: 0,
            second_answered: 0,
            second_errors: BTreeMap::new(),
            requests: 0,
            answered: 0,
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, latency: Duration, failure: Option<Failure>) {
        self.requests += 1;
        self.second_requests += 1;
        let (answered, timed) = match &failure {
            None | Some(Failure::Status(_)) => (true, true),
            Some(Failure::Kind("timeout")) => (false, true),
            Some(Failure::Kind(_)) => (false, false),
        };
        if timed {
            let us = (latency.as_micros() as u64).max(1);
            let _ = self.total.record(us);
            let _ = self.second.record(us);
        }
        if answered {
            self.answered += 1;
            self.second_answered += 1;
        }
        if let Some(f) = failure {
            let kind = match f {
                Failure::Status(code) => code.to_string(),
                Failure::Kind(kind) => kind.to_owned(),
            };
            *self.second_errors.entry(kind.clone()).or_default() += 1;
            *self.errors.entry(kind).or_default() += 1;
        }
    }
}

/// What every worker shares: the prepared requests and how to reach their servers.
struct Shared {
    origins: Vec<Origin>,
    requests: Vec<Prepared>,
    /// Request index for each turn of a cycle as long as the weights together.
    cycle: Vec<usize>,
    protocol: Protocol,
    tls: Option<Arc<rustls::ClientConfig>>,
    measured_from: Instant,
}

/// One connection's loop state: its connections (one per server) and its results.
struct Worker {
    shared: Arc<Shared>,
    conns: Vec<Option<Sender>>,
    turn: usize,
    rec: Arc<Mutex<Recorder>>,
}

impl Worker {
    fn new(shared: Arc<Shared>, index: usize) -> (Self, Arc<Mutex<Recorder>>) {
        let rec = Arc::new(Mutex::new(Recorder::new()));
        let worker = Worker {
            conns: shared.origins.iter().map(|_| None).collect(),
            // Workers start at different places of the cycle, so a short test still
            // sends every kind of request in proportion.
            turn: index,
            shared,
            rec: rec.clone(),
        };
        (worker, rec)
    }

    /// Sends the next request of the cycle (connecting first when needed); a request not
    /// answered by `deadline` is a `timeout`.
    async fn once(&mut self, deadline: Instant) -> Option<Failure> {
        let s = &self.shared;
        let req = &s.requests[s.cycle[self.turn % s.cycle.len()]];
        self.turn = self.turn.wrapping_add(1);
        let slot = &mut self.conns[req.origin];
        let work = async {
            for attempt in 0..2 {
                if slot.as_ref().is_none_or(Sender::is_closed) {
                    *slot = Some(
                        conn::connect(&s.origins[req.origin], s.protocol, s.tls.as_ref()).await?,
                    );
                }
                let Some(sender) = slot.as_mut() else {
                    return Err("connect");
                };
                match conn::send(sender, req).await {
                    // The server closed the idle connection before this request left: once
                    // more on a new one, as browsers and proxies do.
                    Err("closed") if attempt == 0 => *slot = None,
                    Err("closed") => return Err("io"),
                    other => return other,
                }
            }
            Err("io")
        };
        let failure = match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok(status)) if status.is_client_error() || status.is_server_error() => {
                return Some(Failure::Status(status.as_u16()));
            }
            Ok(Ok(_)) => return None,
            Ok(Err(kind)) => Failure::Kind(kind),
            Err(_) => Failure::Kind("timeout"),
        };
        // A connection that failed or timed out is not trusted again.
        *slot = None;
        Some(failure)
    }

    fn record(&self, at: Instant, failure: Option<Failure>) {
        if at >= self.shared.measured_from
            && let Ok(mut r) = self.rec.lock()
        {
            r.record(at.elapsed(), failure);
        }
    }
}

/// The request order of one cycle: weights 3 and 1 give `0 0 1 0`, spread so that each
/// request's turns are as even as its weight allows.
fn cycle(requests: &[Request]) -> Result<Vec<usize>, String> {
    let total: u64 = requests.iter().map(|r| u64::from(r.weight)).sum();
    if total == 0 {
        return Err("every request has weight 0: nothing would be sent".into());
    }
    if total > 10_000 {
        return Err(format!(
            "the request weights add up to {total}; keep them below 10000 together"
        ));
    }
    // Smooth weighted round robin (as nginx balances upstreams).
    let mut current = vec![0i64; requests.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, r) in current.iter_mut().zip(requests) {
            *c += i64::from(r.weight);
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .unwrap_or((0, &0));
        current[best] -= total as i64;
        order.push(best);
    }
    Ok(order)
}

/// A plan checked and ready to run.
struct Compiled {
    origins: Vec<Origin>,
    requests: Vec<Prepared>,
    cycle: Vec<usize>,
    tls: Option<Arc<rustls::ClientConfig>>,
    arrivals: Option<Arrivals>,
}

impl Plan {
    /// Checks what can be checked before sending: URLs, headers, weights, rates and the
    /// TLS files.
    pub fn check(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<Compiled, String> {
        let (origins, requests) = conn::prepare(&self.requests, self.protocol)?;
        let tls = if origins.iter().any(|o| o.tls) {
            Some(conn::tls_config(&self.tls, self.protocol)?)
        } else {
            None
        };
        let duration = self.measured();
        if duration.is_zero() {
            return Err("the test must last longer than zero seconds".into());
        }
        let arrivals = match &self.model {
            Model::Closed { .. } => None,
            Model::Open { rate, .. } => Some(Arrivals::new(
                *rate,
                self.warmup,
                &[RampStage {
                    duration,
                    rate: *rate,
                }],
            )?),
            Model::Ramp { from, stages, .. } => Some(Arrivals::new(*from, self.warmup, stages)?),
        };
        if let Model::Open { rate, .. } = self.model
            && rate <= 0.0
        {
            return Err(format!(
                "the rate must be a positive number of requests per second, not {rate}"
            ));
        }
        Ok(Compiled {
            origins,
            requests,
            cycle: cycle(&self.requests)?,
            tls,
            arrivals,
        })
    }
}

/// Runs the plan; `progress` hears about every second. Invalid URLs, headers, weights and
/// rates are refused at once; unreachable or misbehaving servers are counted as errors and
/// the test ends on time.
pub async fn run(
    plan: Plan,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<Summary, String> {
    let Compiled {
        origins,
        requests,
        cycle,
        tls,
        arrivals,
    } = plan.compile()?;
    let duration = plan.measured();
    let connections = match &plan.model {
        Model::Closed { connections }
        | Model::Open { connections, .. }
        | Model::Ramp { connections, .. } => (*connections).max(1),
    };
    let start = Instant::now();
    let measured_from = start + plan.warmup;
    let end = measured_from + duration;
    let shared = Arc::new(Shared {
        origins,
        requests,
        cycle,
        protocol: plan.protocol,
        tls,
        measured_from,
    });
    // Dropping the set (the step cancelled, the test over) stops every task in it.
    let mut workers = tokio::task::JoinSet::new();
    let timeout = plan.timeout;
    let window = Window {
        start,
        end,
        timeout,
    };
    let recorders = match arrivals {
        None => closed(&mut workers, &shared, connections, &window),
        Some(arrivals) => open(&mut workers, &shared, connections, arrivals, &window),
    };
    let mut ticker = ticker(recorders.clone(), measured_from, end, progress);
    // Everything stops on time: every request is due by the end plus one timeout.
    let deadline = end + timeout + Duration::from_millis(100);
    let _ = tokio::time::timeout_at(deadline, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    workers.abort_all();
    // The last second is reported before the summary.
    let _ = tokio::time::timeout_at(deadline + Duration::from_secs(1), &mut ticker.0).await;
    let mut total = Recorder::new();
    for rec in &recorders {
        let r = rec
            .lock()
            .map_err(|_| "a worker's recorder was poisoned".to_owned())?;
        let _ = total.total.add(&r.total);
        total.requests += r.requests;
        total.answered += r.answered;
        for (kind, n) in &r.errors {
            *total.errors.entry(kind.clone()).or_default() += n;
        }
    }
    Ok(total.summary(duration))
}

/// When a test starts and ends, and how long a request may take.
struct Window {
    start: Instant,
    end: Instant,
    timeout: Duration,
}

/// The closed model: each connection sends its next request when the last one ends.
fn closed(
    workers: &mut tokio::task::JoinSet<()>,
    shared: &Arc<Shared>,
    connections: usize,
    window: &Window,
) -> Vec<Arc<Mutex<Recorder>>> {
    let (end, timeout) = (window.end, window.timeout);
    let mut recorders = Vec::new();
    for i in 0..connections {
        let (mut w, rec) = Worker::new(shared.clone(), i);
        recorders.push(rec);
        workers.spawn(async move {
            while Instant::now() < end {
                let sent = Instant::now();
                let failure = w.once(sent + timeout).await;
                w.record(sent, failure);
            }
        });
    }
    recorders
}

/// The open model: a scheduler releases intended send times; workers take them in order,
/// so a stall makes the queue grow and every queued request counts its wait. A request
/// is due by its intended time plus the timeout: one taken later is a timeout without
/// being sent, so nothing that was due goes unrecorded.
fn open(
    workers: &mut tokio::task::JoinSet<()>,
    shared: &Arc<Shared>,
    connections: usize,
    arrivals: Arrivals,
    window: &Window,
) -> Vec<Arc<Mutex<Recorder>>> {
    let (start, end, timeout) = (window.start, window.end, window.timeout);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    workers.spawn(async move {
        for offset in arrivals {
            let intended = start + offset;
            if intended >= end {
                break;
            }
            tokio::time::sleep_until(intended).await;
            if tx.send(intended).is_err() {
                break;
            }
        }
    });
    let mut recorders = Vec::new();
    for i in 0..connections {
        let (mut w, rec) = Worker::new(shared.clone(), i);
        recorders.push(rec);
        let rx = rx.clone();
        workers.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(intended) = next else {
                    break;
                };
                let due = intended + timeout;
                let failure = if Instant::now() >= due {
                    Some(Failure::Kind("timeout"))
                } else {
                    w.once(due).await
                };
                w.record(intended, failure);
            }
        });
    }
    recorders
}

/// Per-second progress, from every worker's share of the second, until the end.
fn ticker(
    recorders: Vec<Arc<Mutex<Recorder>>>,
    measured_from: Instant,
    end: Instant,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut second = 0;
        let mut next = measured_from + Duration::from_secs(1);
        let mut this_second = Recorder::new();
        let mut so_far = Recorder::new();
        while next <= end {
            tokio::time::sleep_until(next).await;
            second += 1;
            this_second.take_second(&recorders);
            let _ = so_far.total.add(&this_second.second);
            so_far.requests += this_second.requests;
            so_far.answered += this_second.answered;
            for (kind, n) in &this_second.errors {
                *so_far.errors.entry(kind.clone()).or_default() += n;
            }
            let h = &this_second.second;
            progress(Progress {
                second,
                requests: this_second.requests,
                errors: this_second.errors.values().sum(),
                p50_ms: ms(h, 0.5),
                p95_ms: ms(h, 0.95),
                p99_ms: ms(h, 0.99),
                so_far: so_far.summary(Duration::from_secs(second)),
            });
            next += Duration::from_secs(1);
        }
    }))
}

/// A task that stops when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Recorder {
    /// Becomes the second just gone: every worker's share of it, which they start again.
    fn take_second(&mut self, recorders: &[Arc<Mutex<Recorder>>]) {
        self.second.reset();
        self.errors.clear();
        self.requests = 0;
        self.answered = 0;
        for rec in recorders {
            if let Ok(mut r) = rec.lock() {
                let _ = self.second.add(&r.second);
                r.second.reset();
                self.requests += std::mem::take(&mut r.second_requests);
                self.answered += std::mem::take(&mut r.second_answered);
                for (kind, n) in std::mem::take(&mut r.second_errors) {
                    *self.errors.entry(kind).or_default() += n;
                }
            }
        }
    }

    /// The figures of `total` over `measured`.
    fn summary(&self, measured: Duration) -> Summary {
        let seconds = measured.as_secs_f64();
        let errors: u64 = self.errors.values().sum();
        let h = &self.total;
        Summary {
            requests: self.requests,
            answered: self.answered,
            errors: self.errors.clone(),
            seconds,
            rps: if seconds > 0.0 {
                self.answered as f64 / seconds
            } else {
                0.0
            },
            error_ratio: if self.requests == 0 {
                0.0
            } else {
                errors as f64 / self.requests as f64
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_become_an_even_cycle() {
        let r = |w| Request {
            weight: w,
            ..Request::get("http://x/")
        };
        assert_eq!(cycle(&[r(3), r(1)]).unwrap(), vec![0, 0, 1, 0]);
        assert_eq!(cycle(&[r(1), r(1)]).unwrap(), vec![0, 1]);
        let c = cycle(&[r(5), r(0), r(2)]).unwrap();
        assert_eq!(c.iter().filter(|&&i| i == 0).count(), 5);
        assert_eq!(c.iter().filter(|&&i| i == 2).count(), 2);
        assert!(!c.contains(&1));
        assert!(cycle(&[r(0)]).is_err());
    }
}
