//! Rolling a train's members back as one release: the members a stage promoted, in reverse
//! dependency order, each along its own rollback path (`glidepath rollback`'s: an
//! unfinished canary's traffic back on stable first, else the promotion reverted to the
//! version it replaced). Reads only the members' clusters, so it works after the train's
//! driver has gone (`glidepath rollback --train RUN`).

use std::sync::Arc;

use serde_json::Value;

use super::Train;
use crate::events::Event;
use crate::pipeline::{Pipeline, Stage, StepKind};

/// The members to roll back, in the order to roll them back: later waves first, and inside
/// a wave the file's order reversed (so a member goes before those it came after).
pub fn reverse_order(train: &Train, promoted: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::new();
    for wave in train.waves.iter().rev() {
        for m in wave.iter().rev() {
            if promoted.contains(m) {
                order.push(*m);
            }
        }
    }
    order
}

/// The Deployments a member's stage releases (`release` steps; their manifests, else the
/// nearest earlier `deploy` step's), by name.
pub fn released_deployments(p: &Pipeline, stage: &Stage) -> Result<Vec<String>, String> {
    let vars = p.query_vars(stage);
    let mut last_deploy: Option<Vec<String>> = None;
    let mut names = Vec::new();
    for step in &stage.steps {
        let paths = match &step.kind {
            StepKind::Deploy(d) => {
                last_deploy = Some(d.manifests.iter().map(|m| m.value.clone()).collect());
                continue;
            }
            StepKind::Release(r) if !r.manifests.is_empty() => {
                r.manifests.iter().map(|m| m.value.clone()).collect()
            }
            StepKind::Release(_) => last_deploy.clone().unwrap_or_default(),
            _ => continue,
        };
        let objects = crate::kube::objects::load_manifests(&paths, &p.base_dir, &vars)
            .map_err(|e| format!("stage {}, step {}: {e}", stage.name, step.name))?;
        names.extend(
            objects
                .iter()
                .filter(|o| o["kind"] == "Deployment")
                .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
                .map(str::to_owned),
        );
    }
    Ok(names)
}

/// The Deployments a member's stage deploys with plain `deploy` steps, by name, with the
/// container images each one's manifest sets.
pub fn deployed_deployments(
    p: &Pipeline,
    stage: &Stage,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let vars = p.query_vars(stage);
    let mut found = Vec::new();
    for step in &stage.steps {
        let StepKind::Deploy(d) = &step.kind else {
            continue;
        };
        let paths: Vec<String> = d.manifests.iter().map(|m| m.value.clone()).collect();
        let objects = crate::kube::objects::load_manifests(&paths, &p.base_dir, &vars)
            .map_err(|e| format!("stage {}, step {}: {e}", stage.name, step.name))?;
        for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
            if let Some(name) = o.pointer("/metadata/name").and_then(Value::as_str) {
                found.push((name.to_owned(), images(o)));
            }
        }
    }
    Ok(found)
}

/// The container images of a Deployment's pod template, in order.
fn images(d: &Value) -> Vec<String> {
    d.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// What rolling a member's stage back did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rolled {
    /// Its Deployments are back on the versions before the stage.
    Back(String),
    /// Nothing earlier to return to: the stage's deploy created its Deployments. Left as is.
    Kept(String),
}

/// Rolls one member's stage back on its cluster; `log` receives what the rollback says.
/// A stage that releases goes back along `glidepath rollback`'s path; a stage that only
/// deploys goes back to each Deployment's previous revision, when the live one still runs
/// what the stage deployed. Returns what was done, or why it could not be.
pub async fn roll_back_member(
    p: &Pipeline,
    stage: &str,
    who: &str,
    log: Arc<dyn Fn(Event) + Send + Sync>,
) -> Result<Rolled, String> {
    let Some(stage) = p.stages.iter().find(|s| s.name == stage) else {
        return Err(format!("{} has no stage {stage}", p.path.display()));
    };
    let names = released_deployments(p, stage)?;
    if names.is_empty() {
        return undeploy(p, stage, who, log).await;
    }
    let mut done = Vec::new();
    for name in names.iter().rev() {
        let cluster = connect(stage).await?;
        let io = rollback_io(stage, log.clone());
        let undone = crate::steps::release::rollback_service(cluster, name, &io, who)
            .await
            .map_err(|e| format!("rollback of {name} failed: {e}"))?;
        done.push(undone);
    }
    Ok(Rolled::Back(done.join("; ")))
}

async fn connect(stage: &Stage) -> Result<crate::kube::objects::Cluster, String> {
    crate::kube::objects::Cluster::connect(stage.target.as_ref())
        .await
        .map_err(|e| format!("cannot reach stage {}'s cluster: {e}", stage.name))
}

fn rollback_io(stage: &Stage, log: Arc<dyn Fn(Event) + Send + Sync>) -> crate::steps::StepIo {
    let (phase, _) = tokio::sync::watch::channel(crate::steps::Phase::Running);
    crate::steps::StepIo::new(&stage.name, "rollback", log, phase)
}

/// A stage that only deploys, rolled back: each Deployment still on what the stage
/// deployed goes back to its previous revision; one the stage created stays.
async fn undeploy(
    p: &Pipeline,
    stage: &Stage,
    who: &str,
    log: Arc<dyn Fn(Event) + Send + Sync>,
) -> Result<Rolled, String> {
    let deployed = deployed_deployments(p, stage)?;
    if deployed.is_empty() {
        return Err(format!(
            "stage {} of {} neither releases nor deploys a Deployment, so there is no earlier version to return to",
            stage.name,
            p.path.display()
        ));
    }
    let (mut back, mut kept) = (Vec::new(), Vec::new());
    for (name, want) in deployed.iter().rev() {
        let cluster = connect(stage).await?;
        let live = crate::kube::workload::deployment(&cluster, name)
            .await
            .map_err(|e| format!("cannot read Deployment {name}: {e}"))?;
        let Some(live) = live else {
            kept.push(format!("{name} is gone"));
            continue;
        };
        let runs = images(&serde_json::to_value(&live).unwrap_or_default());
        let marked =
            crate::kube::workload::annotation(&live, crate::steps::release::ROLLED_BACK_BY);
        if runs != *want
            && let Some(by) = marked
        {
            // Rolled back already (a second `rollback --train`): going back again would
            // return it to what was rolled back.
            back.push(format!(
                "{name} runs {} now, not {} as {} deployed it: rolled back already by {by}; left as is",
                runs.join(", "),
                want.join(", "),
                stage.name
            ));
            continue;
        }
        if runs != *want {
            return Err(format!(
                "{name} runs {} now, not {} as {} deployed it: someone changed it since; left as is",
                runs.join(", "),
                want.join(", "),
                stage.name
            ));
        }
        let io = rollback_io(stage, log.clone());
        match crate::steps::release::revert_revision(cluster, name, &io, who).await {
            Ok(Some(done)) => back.push(done),
            Ok(None) => kept.push(format!(
                "{name} has no earlier revision: {} created it, so it stays",
                stage.name
            )),
            Err(e) => return Err(format!("rollback of {name} failed: {e}")),
        }
    }
    let kept = kept.join("; ");
    Ok(match back.is_empty() {
        true => Rolled::Kept(kept),
        false if kept.is_empty() => Rolled::Back(back.join("; ")),
        false => Rolled::Back(format!("{}; {kept}", back.join("; "))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_waves_roll_back_first() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/train");
        let train = crate::train::load_file(&dir.join("train.yaml"), &Default::default()).unwrap();
        // payments 0, inventory 1 in wave 1; checkout 2 in wave 2.
        assert_eq!(reverse_order(&train, &[0, 1, 2]), vec![2, 1, 0]);
        assert_eq!(reverse_order(&train, &[0, 1]), vec![1, 0]);
        let checkout = &train.members[2].pipeline;
        let prod = &checkout.stages[1];
        // A `deploy` stage releases nothing glidepath can roll back.
        assert!(released_deployments(checkout, prod).unwrap().is_empty());
    }
}
