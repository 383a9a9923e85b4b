//! A load test as pipelines and `glidepath load` write it, turned into a [`Plan`].

use std::path::Path;
use std::time::Duration;

use super::model::{LoadRequest, LoadTest};
use super::{Model, Plan, Protocol, RampStage, Request, TlsOptions};

/// Connections of an open model when none are given: enough for the rate at 100 ms answers.
fn connections_for(rate: f64) -> usize {
    ((rate / 10.0).ceil() as usize).clamp(4, 256)
}

/// The load generator's plan for a load test (a pipeline step or `glidepath load`'s flags);
/// relative paths (`caFile`) are relative to `base_dir`. Everything is checked here, so
/// a pipeline with a bad URL, weight or rate is refused when it is loaded.
pub fn plan_for(step: &LoadTest, base_dir: &Path) -> Result<Plan, String> {
    let model = model(step)?;
    let duration = match (&model, step.duration) {
        (Model::Ramp { .. }, Some(_)) => {
            return Err(
                "a ramp lasts as long as its stages; leave `duration` out or drop `stages`".into(),
            );
        }
        (Model::Ramp { .. }, None) => Duration::ZERO,
        (_, Some(d)) => d.get(),
        (_, None) => return Err("a load test needs a `duration` (or ramp `stages`)".into()),
    };
    let base = step.url.as_deref();
    let requests = if step.requests.is_empty() {
        vec![Request::get(
            base.ok_or("a load test needs a `url` or `requests`")?,
        )]
    } else {
        step.requests
            .iter()
            .map(|r| request(r, base))
            .collect::<Result<_, String>>()?
    };
    let plan = Plan {
        requests,
        protocol: if step.http2 {
            Protocol::Http2
        } else {
            Protocol::Http1
        },
        tls: TlsOptions {
            ca_file: step.ca_file.as_ref().map(|f| base_dir.join(f)),
            insecure: step.insecure_skip_verify,
        },
        duration,
        warmup: step.warmup.map(|w| w.get()).unwrap_or(Duration::ZERO),
        timeout: step
            .timeout
            .map(|t| t.get())
            .unwrap_or(Duration::from_secs(10)),
        model,
    };
    plan.check()?;
    Ok(plan)
}

/// The load model: a ramp when there are stages, open at a `rate`, else closed.
fn model(step: &LoadTest) -> Result<Model, String> {
    let stages: Vec<RampStage> = step
        .stages
        .iter()
        .map(|s| RampStage {
            duration: s.duration.get(),
            rate: s.rate,
        })
        .collect();
    let connections = step.connections.map(|c| c as usize);
    Ok(match (step.rate, stages.is_empty()) {
        (None, false) if step.warmup.is_some_and(|w| !w.get().is_zero()) => {
            return Err(
                "a ramp's warm-up runs at the starting `rate`; set `rate` (or drop `warmup`)"
                    .into(),
            );
        }
        (rate, false) => {
            let peak = stages
                .iter()
                .map(|s| s.rate)
                .fold(rate.unwrap_or(0.0), f64::max);
            Model::Ramp {
                from: rate.unwrap_or(0.0),
                stages,
                connections: connections.unwrap_or(connections_for(peak)),
            }
        }
        (Some(rate), true) => Model::Open {
            rate,
            connections: connections.unwrap_or(connections_for(rate)),
        },
        (None, true) => Model::Closed {
            connections: connections.unwrap_or(10),
        },
    })
}

/// One of the test's requests: its own `url`, or a `path` on the test's server.
fn request(r: &LoadRequest, base: Option<&str>) -> Result<Request, String> {
    let url = match (&r.url, &r.path) {
        (Some(_), Some(_)) => {
            return Err("a request has a `url` or a `path`, not both".to_owned());
        }
        (Some(url), None) => url.clone(),
        (None, path) => {
            let base =
                base.ok_or("a request with only a `path` needs the test's `url` for its server")?;
            match path {
                Some(p) => format!("{}{p}", origin(base)?),
                None => base.to_owned(),
            }
        }
    };
    let method = r.method.as_deref().unwrap_or("GET");
    Ok(Request {
        method: method
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| format!("`{method}` is not an HTTP method"))?,
        url,
        headers: r.headers.clone().into_iter().collect(),
        body: r.body.clone().unwrap_or_default().into(),
        weight: r.weight.unwrap_or(1),
    })
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> Result<String, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: not a URL ({e})"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok(format!("{scheme}://{authority}")),
        _ => Err(format!(
            "{url}: the URL needs http:// or https:// and a host"
        )),
    }
}
