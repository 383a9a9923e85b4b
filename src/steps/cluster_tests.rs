//! Steps that act inside the cluster: `chaos` (delete pods of a workload at an interval
//! while traffic flows; a later gate judges whether the service held its SLOs) and `test`
//! with `job` (a Kubernetes Job whose pod logs stream into the test output; pass or fail
//! from the Job's status).

use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::time::Instant;

use super::apply::connect;
use super::{StepCtx, StepResult};
use crate::events::{Evidence, Verdict};
use crate::kube::objects::{Cluster, Readiness};
use crate::kube::{Error, workload};
use crate::pipeline::model::{ChaosStep, JobTest};
use crate::units::format_duration;

fn infra_failure(e: Error) -> StepResult {
    StepResult {
        infra_error: true,
        ..StepResult::failed(e.to_string())
    }
}

/// Runs a `chaos` step.
pub async fn chaos(step: &ChaosStep, ctx: &mut StepCtx) -> StepResult {
    let cluster = match connect(ctx).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let interval = step
        .interval
        .map(|i| i.get())
        .unwrap_or(Duration::from_secs(10));
    let duration = step.duration.get();
    let deadline = Instant::now() + duration;
    let mut killed = Vec::new();
    let mut seed = ctx.run as u64 ^ 0x9E37_79B9_7F4A_7C15;
    loop {
        let pods = match workload::pods(&cluster, &step.selector).await {
            Ok(p) => p,
            Err(e) => return infra_failure(e),
        };
        let mut alive: Vec<String> = pods
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.metadata.name.unwrap_or_else(|| "?".into()))
            .collect();
        let n = match (step.count, step.percent) {
            (Some(c), _) => c as usize,
            (None, Some(p)) => ((alive.len() as f64) * p.fraction()).ceil() as usize,
            _ => 1,
        }
        .min(alive.len());
        if alive.is_empty() {
            ctx.io
                .log("chaos", format!("no pods match {}", step.selector));
        }
        for _ in 0..n {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let name = alive.swap_remove((seed >> 33) as usize % alive.len());
            match workload::delete_pod(&cluster, &name).await {
                Ok(()) => {
                    ctx.io.log("chaos", format!("deleted pod {name}"));
                    killed.push(name);
                }
                Err(e) => ctx
                    .io
                    .log("chaos", format!("could not delete pod {name}: {e}")),
            }
        }
        let now = Instant::now();
        if now + interval > deadline {
            tokio::time::sleep(deadline.saturating_duration_since(now)).await;
            break;
        }
        tokio::time::sleep(interval).await;
    }
    StepResult::judged(
        Verdict::Pass,
        format!(
            "deleted {} pods matching {} over {}",
            killed.len(),
            step.selector,
            format_duration(duration)
        ),
        vec![Evidence::new(
            "pods deleted",
            Verdict::Pass,
            killed.len().to_string(),
        )],
    )
}

/// Five characters as Kubernetes uses in generated names, so the Jobs of two runs of the
/// same step never share a name.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // Each RandomState carries fresh random keys: randomness without a dependency.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut r = hasher.finish();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Runs a `test` with `job`.
pub async fn job(step: &JobTest, ctx: &mut StepCtx) -> StepResult {
    let cluster = match connect(ctx).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = format!(
        "glidepath-{}-{}-{}",
        ctx.step
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
        ctx.run,
        random_suffix()
    );
    let job = job_object(step, ctx, &name, &cluster.namespace);
    if let Err(e) = workload::create_job(&cluster, &job).await {
        return StepResult::failed(format!("cannot create the Job: {e}"));
    }
    ctx.io.log("job", format!("created Job {name}"));
    follow_job(&cluster, &name, ctx).await
}

/// The Job a `test: { job }` step runs: one container, never retried, removed an hour
/// after it finishes.
fn job_object(step: &JobTest, ctx: &StepCtx, name: &str, namespace: &str) -> Job {
    let env: Vec<EnvVar> = step
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(crate::metrics::render(v, &ctx.vars)),
            ..EnvVar::default()
        })
        .collect();
    let container = Container {
        name: "test".into(),
        image: Some(crate::metrics::render(&step.image, &ctx.vars)),
        env: Some(env),
        command: (!step.command.is_empty()).then(|| {
            step.command
                .iter()
                .map(|c| crate::metrics::render(c, &ctx.vars))
                .collect()
        }),
        ..Container::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some([("app.kubernetes.io/managed-by".into(), "glidepath".into())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(3600),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some([("glidepath.dev/job".into(), name.to_owned())].into()),
                    annotations: Some(step.annotations.clone().into_iter().collect()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// Streams the Job's pod log into the step's output until the Job completes or fails.
async fn follow_job(cluster: &Cluster, name: &str, ctx: &mut StepCtx) -> StepResult {
    let selector = format!("glidepath.dev/job={name}");
    let mut printed = 0usize;
    loop {
        // Stream the pod's log lines as they appear.
        if let Ok(pods) = workload::pods(cluster, &selector).await
            && let Some(pod_name) = pods.first().and_then(|p| p.metadata.name.as_deref())
            && let Ok(text) = workload::pod_log(cluster, pod_name).await
        {
            for line in text.lines().skip(printed) {
                ctx.io.log("job", line.to_owned());
                printed += 1;
            }
        }
        match workload::job(cluster, name).await {
            Ok(Some(live)) => match workload::job_readiness(&live) {
                Readiness::Ready => {
                    return StepResult::judged(
                        Verdict::Pass,
                        format!("Job {name} succeeded"),
                        vec![Evidence::new(
                            format!("Job {name}"),
                            Verdict::Pass,
                            "Complete",
                        )],
                    );
                }
                Readiness::Failed(why) => {
                    return StepResult::judged(
                        Verdict::Fail,
                        format!("Job {name} failed: {why}"),
                        vec![Evidence::new(format!("Job {name}"), Verdict::Fail, why)],
                    );
                }
                Readiness::Pending(_) => {}
            },
            Ok(None) => return StepResult::failed(format!("Job {name} disappeared")),
            Err(e) => return infra_failure(e),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_suffixes_look_generated_and_differ() {
        let a = random_suffix();
        assert_eq!(a.len(), 5);
        assert!(
            a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{a}"
        );
        // 27^5 names: three draws in a row that all collide mean no randomness at all.
        assert!((0..3).any(|_| random_suffix() != a));
    }
}
