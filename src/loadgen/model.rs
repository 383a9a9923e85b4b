//! A load test as a pipeline (or `glidepath load`) writes it; [`super::plan_for`] turns it
//! into the plan the generator runs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::Span;

/// A load test (run by the load generator).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadTest {
    /// Target URL; requests with only a `path` go to its server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How long to send (a ramp lasts as long as its stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// Requests per second (open model); with `stages`, the rate they start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// A ramp: the rate moves linearly to each stage's `rate` over its `duration`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<RampStage>,
    /// Connections sending as fast as they can (closed model); with a rate, the most
    /// requests in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Time excluded from the results at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Span>,
    /// A request slower than this is a `timeout` error (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Speak HTTP/2 (ALPN over TLS, prior knowledge over cleartext).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http2: bool,
    /// PEM file of a CA to trust besides the system's (for `https` URLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Skip TLS verification (named so nobody sets it by accident).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// What to send, weighted; without it, GETs of `url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<LoadRequest>,
    /// Limits on results, such as `latency_p95_ms: 300`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, f64>,
}

impl LoadTest {
    /// One line: what is loaded, how hard and for how long.
    pub fn describe(&self) -> String {
        let what = match (&self.url, self.requests.as_slice()) {
            (_, [_, _, ..]) => format!("{} kinds of request", self.requests.len()),
            (Some(url), _) => url.clone(),
            (None, [one]) => one.url.clone().unwrap_or_default(),
            (None, []) => String::new(),
        };
        if !self.stages.is_empty() {
            let total: std::time::Duration = self.stages.iter().map(|s| s.duration.get()).sum();
            let from = self.rate.unwrap_or(0.0);
            let rates: Vec<String> = std::iter::once(from)
                .chain(self.stages.iter().map(|s| s.rate))
                .map(|r| format!("{r}"))
                .collect();
            return format!(
                "load test {what}, ramping {}/s over {}",
                rates.join(" → "),
                crate::units::format_duration(total)
            );
        }
        let how = match self.rate {
            Some(rate) => format!("{rate}/s"),
            None => format!("{} connections", self.connections.unwrap_or(10)),
        };
        match self.duration {
            Some(d) => format!("load test {what}, {how}, for {d}"),
            None => format!("load test {what}, {how}"),
        }
    }
}

/// A stage of a load ramp.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RampStage {
    /// How long the stage lasts.
    pub duration: Span,
    /// Requests per second at its end.
    pub rate: f64,
}

/// One kind of request in a load test.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadRequest {
    /// The method (GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A whole URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A path on the test's `url` server, such as `/api/cart?id=7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Share of the traffic relative to the other requests (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}
