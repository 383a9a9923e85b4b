//! Notifications: the pipeline's `notify` webhooks hear about the run (started, finished,
//! a gate failed, waiting for approval, rolled back) as JSON, or as a Slack-compatible
//! message. Sending never holds the release up: the engine's events are read from its
//! broadcast and queued to one task per webhook, which posts them in order and retries
//! connection errors, 429 and 5xx with backoff. URLs are secrets (a Slack webhook's path
//! is its token), so logs show only their scheme and host.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::events::{Envelope, Event, Status, Verdict};
use crate::pipeline::model::{Notify, NotifyEvent, NotifyFormat};

/// How long the end of a run waits for notifications still in flight: senders give up
/// what they have not sent by then.
pub const FLUSH: Duration = Duration::from_secs(10);

/// A URL as logs may show it: scheme, host and port; any user, path or query hidden.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path() != "/" || u.query().is_some() {
                "/…"
            } else {
                ""
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "(an invalid URL)".into(),
    }
}

/// Something worth telling a webhook, from one engine event.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Which kind.
    pub kind: NotifyEvent,
    /// Its JSON payload (`format: json`).
    pub payload: Value,
    /// One line for a person (the Slack message).
    pub text: String,
}

/// The run being followed: names from its start, for every notice.
#[derive(Debug, Default)]
struct Run {
    id: i64,
    pipeline: String,
    service: String,
}

fn iso(at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Run {
    /// The notice `env` gives, if any.
    fn notice(&mut self, env: &Envelope) -> Option<Notice> {
        let mut payload = json!({
            "source": "glidepath",
            "run": env.run,
            "at": iso(env.at_ms),
        });
        let (kind, text) = self.describe(env, &mut payload)?;
        payload["event"] = json!(kind);
        payload["pipeline"] = json!(self.pipeline);
        payload["service"] = json!(self.service);
        Some(Notice {
            kind,
            payload,
            text,
        })
    }

    /// Which notice `env` is and its text, with its own fields added to `payload`.
    fn describe(&mut self, env: &Envelope, payload: &mut Value) -> Option<(NotifyEvent, String)> {
        Some(match &env.event {
            Event::RunStarted {
                pipeline,
                service,
                resumed,
                ..
            } => {
                *self = Run {
                    id: env.run,
                    pipeline: pipeline.clone(),
                    service: service.clone(),
                };
                payload["resumed"] = json!(resumed);
                let verb = if *resumed { "resumed" } else { "started" };
                (
                    NotifyEvent::RunStarted,
                    format!("▶ {} run {} {verb}", pipeline, env.run),
                )
            }
            Event::RunFinished {
                status,
                exit_code,
                reason,
            } => {
                payload["status"] = json!(status);
                payload["exitCode"] = json!(exit_code);
                payload["reason"] = json!(reason);
                (
                    NotifyEvent::RunFinished,
                    format!(
                        "{} {} run {} {status}: {reason}",
                        status.glyph(),
                        self.pipeline,
                        self.id
                    ),
                )
            }
            Event::StepFinished {
                stage,
                step,
                status: Status::Failed | Status::RolledBack,
                verdict: Some(verdict @ (Verdict::Fail | Verdict::Error)),
                summary,
                evidence,
                ..
            } => {
                payload["stage"] = json!(stage);
                payload["step"] = json!(step);
                payload["verdict"] = json!(verdict);
                payload["summary"] = json!(summary);
                payload["evidence"] = failed_evidence(evidence);
                (
                    NotifyEvent::GateFailed,
                    format!(
                        "✗ {} run {}: gate {stage}/{step} failed: {summary}",
                        self.pipeline, self.id
                    ),
                )
            }
            Event::StepState {
                stage,
                step,
                status: Status::WaitingForApproval,
                message,
            } => {
                payload["stage"] = json!(stage);
                payload["step"] = json!(step);
                payload["message"] = json!(message);
                (
                    NotifyEvent::WaitingForApproval,
                    format!(
                        "? {} run {}: {stage}/{step} waits for approval: {message} (glidepath approve {})",
                        self.pipeline, self.id, self.id
                    ),
                )
            }
            Event::StageFinished {
                stage,
                status: Status::RolledBack,
            } => {
                payload["stage"] = json!(stage);
                (
                    NotifyEvent::RolledBack,
                    format!(
                        "↺ {} run {}: stage {stage} rolled back",
                        self.pipeline, self.id
                    ),
                )
            }
            _ => return None,
        })
    }
}

/// The evidence a failed gate's notice carries: what did not pass.
fn failed_evidence(evidence: &[crate::events::Evidence]) -> Value {
    json!(
        evidence
            .iter()
            .filter(|e| e.verdict != Verdict::Pass)
            .collect::<Vec<_>>()
    )
}

/// The body a webhook of `format` receives for `notice`.
pub fn body(format: NotifyFormat, notice: &Notice) -> Value {
    match format {
        NotifyFormat::Json => notice.payload.clone(),
        NotifyFormat::Slack => {
            let mut lines = vec![format!("*{}*", slack_text(&notice.text))];
            if let Some(evidence) = notice.payload["evidence"].as_array() {
                for e in evidence.iter().take(10) {
                    lines.push(format!(
                        "• {} = {}{}",
                        slack_text(e["check"].as_str().unwrap_or_default()),
                        slack_text(e["value"].as_str().unwrap_or("no value")),
                        e["expected"]
                            .as_str()
                            .map(|x| format!(" (expected {})", slack_text(x)))
                            .unwrap_or_default()
                    ));
                }
            }
            json!({
                "text": slack_text(&notice.text),
                "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": cap(&lines.join("\n"), 2900) } }],
            })
        }
    }
}

/// Text as Slack shows it literally: `&`, `<` and `>` escaped (so a summary cannot
/// mention `<!channel>` or forge a link), formatting characters and line breaks made
/// plain, at most 1,000 characters.
fn slack_text(text: &str) -> String {
    let plain: String = text
        .chars()
        .map(|c| match c {
            '*' | '_' | '~' | '`' => '\'',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    cap(
        &plain
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
        1000,
    )
}

/// `text` cut to at most `max` characters, with `…` where it was cut.
fn cap(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Where warnings about notifications go: glidepath's own log always, and whatever the
/// caller shows them on (the CLI: stderr, unless the cockpit owns the screen).
#[derive(Clone)]
pub struct Warnings(Arc<dyn Fn(&str) + Send + Sync>);

impl Warnings {
    /// Warnings logged and handed to `show`.
    pub fn new(show: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Warnings(Arc::new(show))
    }

    /// Logs `message` and shows it.
    pub fn warn(&self, message: String) {
        tracing::warn!("{message}");
        (self.0)(&message);
    }
}

/// One webhook's sender: posts notices in order, retrying with backoff.
struct Hook {
    config: Notify,
    client: reqwest::Client,
    /// Set when the run has finished: what is not sent by then is given up.
    deadline: std::sync::Arc<std::sync::OnceLock<tokio::time::Instant>>,
    warnings: Warnings,
}

impl Hook {
    fn url(&self) -> Result<String, String> {
        match (&self.config.url, &self.config.url_env) {
            (Some(u), _) => Ok(u.clone()),
            (None, Some(name)) => {
                std::env::var(name).map_err(|_| format!("webhook urlEnv {name} is not set"))
            }
            (None, None) => Err("webhook without a URL".into()),
        }
    }

    /// The headers to send; `env:NAME` values read now. A variable that is not set is
    /// an error naming it.
    fn headers(&self) -> Result<reqwest::header::HeaderMap, String> {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let mut map = HeaderMap::new();
        for (k, v) in &self.config.headers {
            let value = match v.strip_prefix("env:") {
                Some(name) => std::env::var(name)
                    .map_err(|_| format!("header {k}: environment variable {name} is not set"))?,
                None => v.clone(),
            };
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header {k}: not a valid header name"))?;
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| format!("header {k}: not a valid header value"))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        Ok(map)
    }

    async fn send(&self, notice: &Notice) {
        let prepared = self.url().and_then(|url| {
            reqwest::Url::parse(&url).map_err(|e| format!("webhook URL: {e}"))?;
            Ok((url, self.headers()?))
        });
        let (url, headers) = match prepared {
            Ok(x) => x,
            Err(e) => return self.warnings.warn(format!("notification not sent: {e}")),
        };
        let shown = redact(&url);
        let body = body(self.config.format, notice);
        let retries = self.config.retries.unwrap_or(3);
        let timeout = self
            .config
            .timeout
            .map_or(Duration::from_secs(5), |t| t.get());
        let mut backoff = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Once the run has ended, nothing waits past the flush deadline.
            let left = self
                .deadline
                .get()
                .map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            if left == Some(Duration::ZERO) {
                return self.warnings.warn(format!(
                    "notification to {shown} dropped: the run ended and the flush time is up"
                ));
            }
            let timeout = left.map_or(timeout, |l| timeout.min(l));
            let req = self
                .client
                .post(&url)
                .timeout(timeout)
                .headers(headers.clone())
                .json(&body);
            let why = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::info!("notified {shown} of {:?} (attempt {attempt})", notice.kind);
                    return;
                }
                Ok(r) if r.status().is_redirection() => {
                    // Not followed: a redirect would turn the POST into a GET, or carry
                    // the headers to another host.
                    return self.warnings.warn(format!(
                        "notification to {shown} refused: HTTP {} (a redirect; not followed)",
                        r.status()
                    ));
                }
                Ok(r) => {
                    let s = r.status();
                    if !(s.is_server_error() || s.as_u16() == 429) {
                        return self.warnings.warn(format!(
                            "notification to {shown} refused: HTTP {s}; not retried"
                        ));
                    }
                    format!("HTTP {s}")
                }
                // reqwest's errors name the URL; only its kind is shown.
                Err(e) if e.is_timeout() => format!("no answer within {timeout:?}"),
                Err(e) if e.is_connect() => "cannot connect".to_owned(),
                Err(_) => "request failed".to_owned(),
            };
            if attempt > retries {
                return self.warnings.warn(format!(
                    "notification to {shown} failed after {attempt} attempt(s): {why}"
                ));
            }
            let wait = match self.deadline.get() {
                Some(d) => backoff.min(d.saturating_duration_since(tokio::time::Instant::now())),
                None => backoff,
            };
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(8));
        }
    }
}

/// Follows a run's events until it finishes and sends what each webhook asked for; what
/// goes wrong goes to `warnings`. Returns once every queued notice was sent or given up.
pub async fn follow(mut rx: broadcast::Receiver<Envelope>, hooks: Vec<Notify>, warnings: Warnings) {
    let client = match crate::tls::http_client()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => return warnings.warn(format!("notifications off: {e}")),
    };
    let mut queues = Vec::new();
    let mut senders = Vec::new();
    let deadline = std::sync::Arc::new(std::sync::OnceLock::new());
    for config in hooks {
        let (tx, mut queue) = mpsc::unbounded_channel::<Notice>();
        let events = config.events.clone();
        let hook = Hook {
            config,
            client: client.clone(),
            deadline: deadline.clone(),
            warnings: warnings.clone(),
        };
        senders.push(tokio::spawn(async move {
            while let Some(n) = queue.recv().await {
                hook.send(&n).await;
            }
        }));
        queues.push((tx, events));
    }
    let mut run = Run::default();
    loop {
        let env = match rx.recv().await {
            Ok(env) => env,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warnings.warn(format!(
                    "notifications skipped {n} events behind a busy run"
                ));
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let finished = matches!(env.event, Event::RunFinished { .. });
        if let Some(notice) = run.notice(&env) {
            for (q, events) in &queues {
                // A webhook hears every kind unless it lists the ones it wants.
                if events.is_empty() || events.contains(&notice.kind) {
                    let _ = q.send(notice.clone());
                }
            }
        }
        if finished {
            let _ = deadline.set(tokio::time::Instant::now() + FLUSH);
            break;
        }
    }
    drop(queues);
    for s in senders {
        let _ = s.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_slack_text_stays_literal() {
        assert_eq!(
            redact("https://user:pw@hooks.slack.com/services/T0/B0/s3cr3t?x=1"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        let notice = Notice {
            kind: NotifyEvent::GateFailed,
            payload: json!({ "evidence": [{ "check": "a*b", "value": "<!channel> & <https://x|y>", "verdict": "fail" }] }),
            text: format!("✗ gate failed: {}", "x".repeat(5000)),
        };
        let b = body(NotifyFormat::Slack, &notice);
        let block = b["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            block.contains("&lt;!channel&gt; &amp; &lt;https://x|y&gt;"),
            "{block}"
        );
        assert!(!block.contains("<!channel>"));
        assert!(block.contains("a'b"), "{block}");
        assert!(
            block.chars().count() <= 2900,
            "Slack refuses section text over 3000"
        );
        assert!(b["text"].as_str().unwrap().ends_with('…'));
    }
}
