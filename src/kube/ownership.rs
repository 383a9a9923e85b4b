//! Field ownership on a shared cluster: glidepath server-side applies as `glidepath`
//! without forcing, so a field another manager changed (`kubectl edit`, a GitOps
//! controller, an autoscaler) stops the apply with the server's conflict, naming that
//! manager and the fields; only a conflict with glidepath's own earlier writes (its merge
//! patches and replaces, which carry the same manager name) is taken over.

use ::kube::api::{PatchParams, PostParams};

use super::FIELD_MANAGER;
use super::error::Answer;

/// Parameters for glidepath's own merge patches: they are recorded as `glidepath`'s.
pub fn update_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Parameters for glidepath's own creates and replaces.
pub fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// The field manager a server-side apply conflict cause names: kube-apiserver's
/// `FieldManagerConflict` causes carry it quoted, as `conflict with "NAME" ...`.
fn manager_of(cause_message: &str) -> Option<&str> {
    let rest = cause_message.split_once('"')?.1;
    Some(rest.split_once('"')?.0)
}

/// Whether a 409 answer to a non-forced apply is a conflict with glidepath's own writes
/// only (then the apply is repeated with force).
pub fn only_own_conflicts(answer: &Answer) -> bool {
    !answer.causes.is_empty()
        && answer
            .causes
            .iter()
            .all(|c| manager_of(&c.message) == Some(FIELD_MANAGER))
}

/// Runs a server-side apply `call` with `params` unforced; repeats it forced when the
/// server's conflict names no manager but glidepath.
pub async fn apply_unforced<T, F, Fut>(
    mut params: PatchParams,
    mut call: F,
) -> Result<T, ::kube::Error>
where
    F: FnMut(PatchParams) -> Fut,
    Fut: std::future::Future<Output = Result<T, ::kube::Error>>,
{
    params.force = false;
    let first = super::objects::retry(|| call(params.clone())).await;
    match first {
        Err(::kube::Error::Api(s))
            if s.code == 409 && only_own_conflicts(&Answer::from((*s).clone())) =>
        {
            params.force = true;
            super::objects::retry(|| call(params.clone())).await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::error::FieldCause;

    fn conflict(managers: &[&str]) -> Answer {
        Answer {
            code: 409,
            reason: "Conflict".into(),
            message: "Apply failed".into(),
            causes: managers
                .iter()
                .map(|m| FieldCause {
                    field: ".spec.replicas".into(),
                    message: format!("conflict with \"{m}\" using apps/v1"),
                })
                .collect(),
        }
    }

    #[test]
    fn only_conflicts_with_glidepath_itself_are_taken_over() {
        assert!(only_own_conflicts(&conflict(&["glidepath"])));
        assert!(!only_own_conflicts(&conflict(&[
            "glidepath",
            "kubectl-edit"
        ])));
        assert!(!only_own_conflicts(&conflict(&["argocd-controller"])));
        assert!(!only_own_conflicts(&conflict(&[])));
        assert!(!only_own_conflicts(&conflict(&["glidepath-dataplane"])));
    }
}
