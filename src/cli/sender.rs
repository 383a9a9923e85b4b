//! The sender of this process's commands: OS user and host, `--as`, and the Kubernetes
//! identity of the stage's cluster when the stage has one.

use std::path::Path;
use std::time::Duration;

use crate::events::Event;
use crate::identity::Sender;
use crate::pipeline::{self, model::Target};
use crate::store::{RunRecord, Store};

/// How long a SelfSubjectReview may take before the command goes without it.
const REVIEW_LIMIT: Duration = Duration::from_secs(5);

/// This process, with its Kubernetes identity on `target` (a cluster, not the embedded
/// sandbox of another process). When the API server cannot say, a note tells why.
pub(super) async fn sender_on(target: Option<&Target>) -> Sender {
    let mut me = Sender::me();
    if let Some(t) = target.filter(|t| !t.is_sandbox()) {
        match crate::kube::whoami::whoami(t, REVIEW_LIMIT).await {
            Ok(k) => me.kube = Some(k),
            Err(e) => eprintln!("note: no Kubernetes identity for this command: {e}"),
        }
    }
    me
}

/// The target of the stage a run is in now (the last stage started), as the run's own
/// pipeline text says; `None` when it has none or the text no longer loads.
pub(super) fn current_target(store: &Store, record: &RunRecord) -> Option<Target> {
    let vars = pipeline::Variables {
        sets: record.sets.clone(),
        use_env: false,
    };
    let p = pipeline::load_str(&record.source, Path::new(&record.path), &vars).ok()?;
    let events = store.events(record.id).ok()?;
    let stage = events.iter().rev().find_map(|e| match &e.event {
        Event::StageStarted { stage } => Some(stage.clone()),
        _ => None,
    });
    let stage = match stage {
        Some(name) => p.stages.into_iter().find(|s| s.name == name)?,
        None => p.stages.into_iter().next()?,
    };
    stage.target
}
