//! Why a release could not do what it set out to: a call to the cluster that failed (a
//! [`kube::Error`](crate::kube::Error), kept with its kind), or one of the release's own
//! failures. The step turns it into text only where it reports the failure.

use std::time::Duration;

use crate::kube::workload::TEMPLATE_HASH;
use crate::units::format_duration;

/// What went wrong in a release.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the cluster failed.
    #[error(transparent)]
    Kube(#[from] crate::kube::Error),
    /// No current ReplicaSet of the stable Deployment has a pod-template hash, so the
    /// stable Service cannot be pinned to the stable pods.
    #[error(
        "cannot tell the stable pods of {name} apart (no current ReplicaSet with a {TEMPLATE_HASH}); the stable Service cannot be pinned"
    )]
    StablePodsUnknown {
        /// The stable Deployment's name.
        name: String,
    },
    /// A Deployment will not get ready by waiting; `why` is what its status says.
    #[error("{why}")]
    RolloutFailed {
        /// The Deployment's own account.
        why: String,
    },
    /// A Deployment the release waited for or was about to change is gone.
    #[error("{what} disappeared")]
    Disappeared {
        /// `Deployment namespace/name`.
        what: String,
    },
    /// A Deployment did not roll out in time.
    #[error("{what} not rolled out after {}: {last}", format_duration(*timeout))]
    RolloutTimeout {
        /// `Deployment namespace/name`.
        what: String,
        /// How long the release waited.
        timeout: Duration,
        /// Where the rollout stood last.
        last: String,
    },
    /// Someone removed the release's mark (`glidepath rollback`): this run changes nothing
    /// more, so it never undoes an operator's rollback.
    #[error("the release was rolled back outside this run {}; nothing more is changed", by.as_deref().map_or_else(|| "(the release's mark is gone; no glidepath.dev/rolled-back-by annotation says by whom)".to_owned(), |b| format!("by {b}")))]
    RolledBackOutside {
        /// Who and when, from the stable Deployment's `glidepath.dev/rolled-back-by`.
        by: Option<String>,
    },
    /// `glidepath rollback` found neither a release in progress nor an earlier version.
    #[error("{name} has no release in progress and no earlier version recorded by glidepath")]
    NothingToRollBack {
        /// The Deployment's name.
        name: String,
    },
}
