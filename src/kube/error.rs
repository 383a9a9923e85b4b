//! Why a call to a cluster failed, as a kind a caller decides on: built from the API
//! server's `Status` (its HTTP code, then its reason) and from kube-rs's own error variants,
//! never from the text of a message. Each kind keeps the words an operator reads.

use std::fmt;

/// What the API server answered: its `Status`, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `Invalid`, `Conflict`...).
    pub reason: String,
    /// The server's message.
    pub message: String,
    /// The fields at fault (an `Invalid` object's validation errors), when the server says.
    pub causes: Vec<FieldCause>,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, HTTP {})", self.message, self.reason, self.code)
    }
}

/// One field the API server found fault with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCause {
    /// The field path (`spec.replicas`); empty when the server names none.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl From<::kube::core::Status> for Answer {
    fn from(s: ::kube::core::Status) -> Self {
        Answer {
            code: s.code,
            causes: s
                .details
                .map(|d| {
                    d.causes
                        .into_iter()
                        .map(|c| FieldCause {
                            field: c.field,
                            message: c.message,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            reason: s.reason,
            message: s.message,
        }
    }
}

/// Why a request got no usable answer: a status from the server, or a failure on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with this status.
    Status(Answer),
    /// No answer came (connection, TLS, a timeout): the error with its sources.
    Transport(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(a) => a.fmt(f),
            Failure::Transport(t) => f.write_str(t),
        }
    }
}

/// What went wrong with a call to a cluster. `what` names the object or the call
/// (`Deployment shop/checkout`, `list Pod`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist: the server said so (HTTP 404), or a read found nothing
    /// where something had to be (`answer` is `None`).
    #[error("{what}{}", answer.as_ref().map_or_else(|| " does not exist".to_owned(), |a| format!(": {a}")))]
    NotFound {
        /// What was asked for.
        what: String,
        /// The server's answer, if it gave one.
        answer: Option<Answer>,
    },
    /// It exists already, or changed since it was read (HTTP 409).
    #[error("{what}: {answer}")]
    Conflict {
        /// What was written.
        what: String,
        /// The server's answer.
        answer: Answer,
    },
    /// Every write of an update against the resourceVersion it had just read was refused
    /// with a 409: the object kept changing between glidepath's read and its write.
    #[error(
        "{what} kept changing while glidepath updated it: the API server refused each of {tries} writes, each made after a fresh read ({answer}); find the other writer (`kubectl get -o yaml --show-managed-fields` names the field managers) and try again"
    )]
    KeptChanging {
        /// What was written.
        what: String,
        /// How many writes were made.
        tries: u32,
        /// The server's answer to the last one.
        answer: Answer,
    },
    /// RBAC refuses the call (HTTP 403).
    #[error("{what}: forbidden ({})", answer.message)]
    Forbidden {
        /// What was asked for.
        what: String,
        /// The server's answer.
        answer: Answer,
    },
    /// The credentials were refused or could not be obtained (HTTP 401, an auth plugin).
    #[error("{what}: {failure}")]
    Unauthorized {
        /// What was asked for.
        what: String,
        /// The server's answer, or why no credentials could be had.
        failure: Failure,
    },
    /// The server found the object invalid (HTTP 422); [`Answer::causes`] names the fields.
    #[error("{what}: {answer}")]
    Invalid {
        /// What was written.
        what: String,
        /// The server's answer, with its causes.
        answer: Answer,
    },
    /// The server refused the request for another reason that retrying will not change
    /// (400, 405, 410 and other 4xx).
    #[error("{what}: {answer}")]
    Rejected {
        /// What was asked for.
        what: String,
        /// The server's answer.
        answer: Answer,
    },
    /// The server is overloaded or failing (429, 5xx), or cannot be reached: worth another
    /// try later.
    #[error("{what}: {failure}")]
    Unavailable {
        /// What was asked for.
        what: String,
        /// The server's answer, or what the connection said.
        failure: Failure,
    },
    /// No answer in time (HTTP 504, a server timeout, a connection that timed out).
    #[error("{what}: {failure}")]
    Timeout {
        /// What was asked for.
        what: String,
        /// The server's answer, or what the connection said.
        failure: Failure,
    },
    /// The cluster does not serve this kind (no CRD, an API group not installed).
    #[error("the cluster does not serve {kind} in {api_version}")]
    NotServed {
        /// The kind asked for.
        kind: String,
        /// Its `apiVersion`.
        api_version: String,
    },
    /// A manifest, a kubeconfig or a target that cannot be used; the message says which and
    /// where.
    #[error("{0}")]
    BadInput(String),
    /// Another driver holds the run lease of this service and stage.
    #[error(
        "{subject} is being driven by {holder} (lease {lease}, held since {since}); wait for it to finish, or take over a stale lease with --force-unlock"
    )]
    Held {
        /// `service-stage`.
        subject: String,
        /// Who holds it.
        holder: String,
        /// `namespace/name` of the Lease.
        lease: String,
        /// When they took it (RFC 3339), `?` when unknown.
        since: String,
    },
    /// The lease was deleted between our failed create and our read.
    #[error("lease {lease} vanished while it was being taken; try again")]
    LeaseVanished {
        /// The Lease's name.
        lease: String,
    },
    /// Someone else took over the stale lease between our read and our write.
    #[error("lease {lease} was taken by someone else just now ({source})")]
    LeaseTaken {
        /// The Lease's name.
        lease: String,
        /// The failed write.
        source: Box<Error>,
    },
    /// Anything else the client reports (an answer it cannot decode, a request it cannot
    /// build).
    #[error("{what}: {detail}")]
    Unexpected {
        /// What was asked for.
        what: String,
        /// The error with its sources.
        detail: String,
    },
}

/// What a status says, decided on its HTTP code, and on its reason where the code alone
/// does not tell (a 500 that is a server timeout) or is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusKind {
    NotFound,
    Conflict,
    Forbidden,
    Unauthorized,
    Invalid,
    Timeout,
    Unavailable,
    Rejected,
}

fn status_kind(code: u16, reason: &str) -> StatusKind {
    use ::kube::core::response::reason as r;
    match code {
        404 => StatusKind::NotFound,
        409 => StatusKind::Conflict,
        403 => StatusKind::Forbidden,
        401 => StatusKind::Unauthorized,
        422 => StatusKind::Invalid,
        504 => StatusKind::Timeout,
        500..=599 if reason == r::TIMEOUT || reason == r::SERVER_TIMEOUT => StatusKind::Timeout,
        429 | 500..=599 => StatusKind::Unavailable,
        0 => match reason {
            r::NOT_FOUND => StatusKind::NotFound,
            r::ALREADY_EXISTS | r::CONFLICT => StatusKind::Conflict,
            r::FORBIDDEN => StatusKind::Forbidden,
            r::UNAUTHORIZED => StatusKind::Unauthorized,
            r::INVALID => StatusKind::Invalid,
            r::TIMEOUT | r::SERVER_TIMEOUT => StatusKind::Timeout,
            r::TOO_MANY_REQUESTS
            | r::SERVICE_UNAVAILABLE
            | r::INTERNAL_ERROR
            | r::STORAGE_READ_ERROR => StatusKind::Unavailable,
            _ => StatusKind::Rejected,
        },
        _ => StatusKind::Rejected,
    }
}

/// Whether a failed call is worth another try: throttling, server errors, timeouts, lost
/// connections (the kinds [`Error::is_transient`] reports).
pub(crate) fn transient(e: &::kube::Error) -> bool {
    match e {
        ::kube::Error::Api(s) => matches!(
            status_kind(s.code, &s.reason),
            StatusKind::Unavailable | StatusKind::Timeout
        ),
        ::kube::Error::HyperError(_) | ::kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Whether a transport error (or one of its sources) is a timeout.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || err
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

impl Error {
    /// The kind of a failed call on `what`, from kube-rs's error.
    pub fn from_kube(what: impl Into<String>, e: ::kube::Error) -> Error {
        let what = what.into();
        let chain = crate::metrics::error_chain(&e);
        match e {
            ::kube::Error::Api(s) => Error::from_status(what, *s),
            ::kube::Error::HyperError(_) | ::kube::Error::Service(_) => {
                let failure = Failure::Transport(chain);
                if timed_out(&e) {
                    Error::Timeout { what, failure }
                } else {
                    Error::Unavailable { what, failure }
                }
            }
            ::kube::Error::Auth(_) => Error::Unauthorized {
                what,
                failure: Failure::Transport(chain),
            },
            ::kube::Error::InferConfig(_)
            | ::kube::Error::InferKubeconfig(_)
            | ::kube::Error::ProxyProtocolUnsupported { .. }
            | ::kube::Error::ProxyProtocolDisabled { .. }
            | ::kube::Error::TlsRequired
            | ::kube::Error::RustlsTls(_) => Error::BadInput(format!("{what}: {chain}")),
            _ => Error::Unexpected {
                what,
                detail: chain,
            },
        }
    }

    /// The kind of a `Status` the server answered for `what`.
    pub fn from_status(what: impl Into<String>, status: ::kube::core::Status) -> Error {
        let what = what.into();
        let kind = status_kind(status.code, &status.reason);
        let answer = Answer::from(status);
        match kind {
            StatusKind::NotFound => Error::NotFound {
                what,
                answer: Some(answer),
            },
            StatusKind::Conflict => Error::Conflict { what, answer },
            StatusKind::Forbidden => Error::Forbidden { what, answer },
            StatusKind::Unauthorized => Error::Unauthorized {
                what,
                failure: Failure::Status(answer),
            },
            StatusKind::Invalid => Error::Invalid { what, answer },
            StatusKind::Timeout => Error::Timeout {
                what,
                failure: Failure::Status(answer),
            },
            StatusKind::Unavailable => Error::Unavailable {
                what,
                failure: Failure::Status(answer),
            },
            StatusKind::Rejected => Error::Rejected { what, answer },
        }
    }

    /// `what` does not exist, found by a read that had to find it.
    pub fn missing(what: impl Into<String>) -> Error {
        Error::NotFound {
            what: what.into(),
            answer: None,
        }
    }

    /// Another try may succeed: the server was unavailable or did not answer in time.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Timeout { .. })
    }

    /// What the API server answered, when it did.
    pub fn answer(&self) -> Option<&Answer> {
        match self {
            Error::NotFound { answer, .. } => answer.as_ref(),
            Error::Conflict { answer, .. }
            | Error::KeptChanging { answer, .. }
            | Error::Forbidden { answer, .. }
            | Error::Invalid { answer, .. }
            | Error::Rejected { answer, .. } => Some(answer),
            Error::Unauthorized { failure, .. }
            | Error::Unavailable { failure, .. }
            | Error::Timeout { failure, .. } => match failure {
                Failure::Status(a) => Some(a),
                Failure::Transport(_) => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(code: u16, reason: &str) -> ::kube::core::Status {
        serde_json::from_value(json!({ "status": "Failure", "message": "m", "reason": reason,
            "code": code, "details": { "causes": [{ "field": "spec.replicas", "message": "must be >= 0" }] } }))
        .unwrap()
    }

    #[test]
    fn kinds_come_from_codes_then_reasons() {
        let kind = |code, reason| Error::from_status("Deployment shop/a", status(code, reason));
        assert!(matches!(kind(404, "NotFound"), Error::NotFound { .. }));
        assert!(matches!(kind(409, "AlreadyExists"), Error::Conflict { .. }));
        assert!(matches!(kind(409, "Conflict"), Error::Conflict { .. }));
        assert!(matches!(kind(403, "Forbidden"), Error::Forbidden { .. }));
        assert!(matches!(
            kind(401, "Unauthorized"),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(kind(400, "BadRequest"), Error::Rejected { .. }));
        assert!(matches!(kind(410, "Expired"), Error::Rejected { .. }));
        assert!(matches!(kind(504, "Timeout"), Error::Timeout { .. }));
        assert!(matches!(kind(500, "ServerTimeout"), Error::Timeout { .. }));
        assert!(matches!(
            kind(503, "ServiceUnavailable"),
            Error::Unavailable { .. }
        ));
        assert!(matches!(
            kind(429, "TooManyRequests"),
            Error::Unavailable { .. }
        ));
        assert!(matches!(kind(0, "NotFound"), Error::NotFound { .. }));
        assert!(kind(500, "InternalError").is_transient());
        assert!(!kind(403, "Forbidden").is_transient());
        let invalid = kind(422, "Invalid");
        let Error::Invalid { answer, .. } = &invalid else {
            panic!("{invalid:?}")
        };
        assert_eq!(
            answer.causes,
            vec![FieldCause {
                field: "spec.replicas".into(),
                message: "must be >= 0".into()
            }]
        );
    }

    #[test]
    fn messages_read_as_the_operator_knows_them() {
        assert_eq!(
            Error::from_status("Deployment shop/a", status(403, "Forbidden")).to_string(),
            "Deployment shop/a: forbidden (m)"
        );
        assert_eq!(
            Error::from_status("Deployment shop/a", status(422, "Invalid")).to_string(),
            "Deployment shop/a: m (Invalid, HTTP 422)"
        );
        let held = Error::Held {
            subject: "checkout-prod".into(),
            holder: "ann (run 3 in j.db)".into(),
            lease: "shop/glidepath-checkout-prod".into(),
            since: "2026-01-01T00:00:00.000000Z".into(),
        };
        assert_eq!(
            held.to_string(),
            "checkout-prod is being driven by ann (run 3 in j.db) (lease shop/glidepath-checkout-prod, held since 2026-01-01T00:00:00.000000Z); wait for it to finish, or take over a stale lease with --force-unlock"
        );
    }
}
