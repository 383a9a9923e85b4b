//! Where a release stands, recorded on the stable Deployment (in its `glidepath.dev/release`
//! mark) before each step that moves traffic or waits, so a driver that dies at any point
//! is resumed at the step it was carrying out: no traffic shift is repeated or skipped, and
//! a pause goes on for the time it had left.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::RELEASE;
use super::ROLLED_BACK_BY;
use super::error::Error;
use super::plan::Plan;
use crate::kube::kinds;
use crate::kube::workload::{annotation, deployment};

/// A release's place in its strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Progress {
    /// The index of the step being carried out: a canary's `steps` (past the last one: the
    /// judgement before promotion); for blue-green, 0 while the new colour is judged, then
    /// [`SWITCHED`].
    #[serde(default)]
    pub step: usize,
    /// When the pause at `step` began (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_started_ms: Option<i64>,
}

/// Blue-green: the active Service was switched (or is being switched) to the new colour.
pub(super) const SWITCHED: usize = 1;

impl Progress {
    /// The progress recorded on a stable Deployment that carries a release's mark.
    pub fn recorded(stable: &Deployment) -> Option<Progress> {
        let info: Value = serde_json::from_str(annotation(stable, RELEASE)?).ok()?;
        serde_json::from_value(info).ok()
    }

    /// How long a pause of `duration` that began at `self.pause_started_ms` still had to
    /// run when the driver stopped at `interrupted_at_ms`: all of it when either is unknown.
    pub fn pause_left(&self, duration: Duration, interrupted_at_ms: Option<i64>) -> Duration {
        match (self.pause_started_ms, interrupted_at_ms) {
            (Some(started), Some(stopped)) => {
                let ran = u64::try_from(stopped.saturating_sub(started)).unwrap_or(0);
                duration.saturating_sub(Duration::from_millis(ran))
            }
            _ => duration,
        }
    }
}

/// Milliseconds since the epoch, now.
pub(super) fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

impl Plan {
    /// The release's mark with its progress.
    pub fn info_at(&self, progress: Progress) -> Value {
        let mut info = self.info();
        if let (Some(map), Ok(Value::Object(p))) =
            (info.as_object_mut(), serde_json::to_value(progress))
        {
            map.extend(p);
        }
        info
    }

    /// Records `progress` in the release's mark before the step it names is carried out.
    /// The change is made against the resourceVersion read, so a mark someone removed in
    /// the meantime (`glidepath rollback`) is never put back: that is an outside rollback.
    pub async fn record(&self, progress: Progress) -> Result<(), Error> {
        let api = self.cluster.namespaced::<Deployment>();
        let mut refused = None;
        for _ in 0..kinds::UPDATE_TRIES {
            let live = deployment(&self.cluster, &self.name).await?;
            let Some(live) = live.filter(|l| annotation(l, RELEASE).is_some()) else {
                return Err(Error::RolledBackOutside {
                    by: self.rolled_back_by().await,
                });
            };
            let patch = json!({ "metadata": {
                "resourceVersion": live.metadata.resource_version,
                "annotations": { RELEASE: self.info_at(progress).to_string() },
            }});
            match kinds::merge(&api, &self.name, &patch).await {
                Ok(_) => return Ok(()),
                Err(crate::kube::Error::Conflict { answer, .. }) => refused = Some(answer),
                Err(e) => return Err(e.into()),
            }
        }
        match refused {
            Some(answer) => Err(crate::kube::Error::KeptChanging {
                what: self.describe(&self.name),
                tries: kinds::UPDATE_TRIES,
                answer,
            }
            .into()),
            None => Err(Error::Disappeared {
                what: self.describe(&self.name),
            }),
        }
    }

    /// Who rolled the release back, when `glidepath rollback` said so.
    async fn rolled_back_by(&self) -> Option<String> {
        let live = deployment(&self.cluster, &self.name).await.ok()??;
        annotation(&live, ROLLED_BACK_BY).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_goes_on_for_the_time_it_had_left() {
        let p = Progress {
            step: 1,
            pause_started_ms: Some(10_000),
        };
        let d = Duration::from_secs(15);
        assert_eq!(p.pause_left(d, Some(14_000)), Duration::from_secs(11));
        assert_eq!(p.pause_left(d, Some(40_000)), Duration::ZERO);
        assert_eq!(p.pause_left(d, None), d);
        // A clock that went backwards leaves the whole pause.
        assert_eq!(p.pause_left(d, Some(9_000)), d);
        let fresh = Progress::default();
        assert_eq!(fresh.pause_left(d, Some(14_000)), d);
    }

    #[test]
    fn progress_reads_back_from_the_mark_and_tolerates_older_marks() {
        let mut d = Deployment::default();
        d.metadata.annotations = Some(
            [(
                RELEASE.to_owned(),
                r#"{"router":"gateway-api","step":4,"pauseStartedMs":1234}"#.to_owned(),
            )]
            .into(),
        );
        assert_eq!(
            Progress::recorded(&d),
            Some(Progress {
                step: 4,
                pause_started_ms: Some(1234)
            })
        );
        // A mark written before progress was recorded resumes from the start.
        d.metadata.annotations =
            Some([(RELEASE.to_owned(), r#"{"router":"replicas"}"#.to_owned())].into());
        assert_eq!(Progress::recorded(&d), Some(Progress::default()));
    }
}
