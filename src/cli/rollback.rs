//! `rollback SERVICE`: roll a service back in an incident, from the cluster alone.

use std::sync::Arc;

use super::args::RollbackArgs;
use super::{Exit, bad_input, infra};
use crate::events::{Event, exit};

/// `rollback`: asks first (unless `--yes`), then aborts the unfinished release or reverts
/// the last promotion.
pub(super) async fn rollback(args: RollbackArgs) -> Result<i32, Exit> {
    use crate::pipeline::model::{ClusterTarget, Target};
    let RollbackArgs {
        service,
        train: _,
        stage,
        context,
        namespace,
        kubeconfig,
        yes,
    } = args;
    let Some(service) = service else {
        return Err(bad_input(
            "rollback needs a SERVICE (its Deployment's name), or --train RUN",
        ));
    };
    if !yes && !confirmed(&service)? {
        return Ok(exit::ABORTED);
    }
    let target = Target::Cluster(ClusterTarget {
        context,
        namespace,
        kubeconfig,
    });
    let who = super::sender::sender_on(Some(&target)).await.label();
    let cluster = crate::kube::objects::Cluster::connect(Some(&target))
        .await
        .map_err(infra)?;
    let (phase, _) = tokio::sync::watch::channel(crate::steps::Phase::Running);
    let emit: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(|e| {
        if let Event::Log { source, line, .. } = e {
            println!("{source}: {line}");
        }
    });
    let io = crate::steps::StepIo::new(stage.as_deref().unwrap_or("-"), "rollback", emit, phase);
    let started = std::time::Instant::now();
    match crate::steps::release::rollback_service(cluster, &service, &io, &who).await {
        Ok(done) => {
            println!("{done} ({} ms, by {})", started.elapsed().as_millis(), who);
            Ok(exit::OK)
        }
        Err(e) => Err(infra(format!("rollback of {service} failed: {e}"))),
    }
}

/// Whether the operator typed the service's name at the terminal to confirm.
pub(super) fn confirmed(service: &str) -> Result<bool, Exit> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(bad_input(
            "rollback asks for confirmation on a terminal; pass --yes to roll back without one",
        ));
    }
    eprint!("roll back {service}? type its name to confirm: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(infra)?;
    if answer.trim() != service {
        eprintln!("not confirmed; nothing changed");
        return Ok(false);
    }
    Ok(true)
}
