//! `contract verify FILE`: check a cluster against a platform contract.

use std::path::PathBuf;

use super::args::ContractVerifyArgs;
use super::{Exit, bad_input, infra};
use crate::events::{Evidence, Verdict, exit};

/// `contract verify`: each promise checked, one line each; a broken promise exits 1.
pub(super) async fn verify(args: ContractVerifyArgs) -> Result<i32, Exit> {
    use crate::pipeline::model::{ClusterTarget, Target};
    let ContractVerifyArgs {
        file,
        context,
        kubeconfig,
    } = args;
    let contract = crate::steps::preflight::load_contract(&file).map_err(bad_input)?;
    let target = Target::Cluster(ClusterTarget {
        context,
        namespace: None,
        kubeconfig,
    });
    let cluster = crate::kube::objects::Cluster::connect(Some(&target))
        .await
        .map_err(infra)?;
    let mut evidence = crate::steps::preflight::check_contract(&cluster, &contract).await;
    for p in &contract.policies {
        // Resolved against the contract file's folder when it was read.
        let path = PathBuf::from(&p.value);
        let check = format!("policy {}", p.value);
        evidence.push(
            match crate::policy::violations(&[path], &serde_json::json!({})) {
                Ok(_) => Evidence::new(check, Verdict::Pass, "compiles"),
                Err(e) => Evidence::new(check, Verdict::Fail, e.to_string()),
            },
        );
    }
    Ok(print_verdicts(&evidence))
}

/// One line per promise, then the contract's verdict; returns the exit code.
fn print_verdicts(evidence: &[Evidence]) -> i32 {
    let broken = evidence
        .iter()
        .filter(|e| e.verdict != Verdict::Pass)
        .count();
    for e in evidence {
        println!(
            "{} {}: {}{}",
            if e.verdict == Verdict::Pass {
                "✓"
            } else {
                "✗"
            },
            e.check,
            e.value.as_deref().unwrap_or(""),
            e.expected
                .as_deref()
                .filter(|_| e.verdict != Verdict::Pass)
                .map(|x| format!(" (expected {x})"))
                .unwrap_or_default()
        );
    }
    if broken == 0 {
        println!("contract kept: {} promises checked", evidence.len());
        exit::OK
    } else {
        println!("contract broken: {broken} of {} promises", evidence.len());
        exit::FAILED
    }
}
