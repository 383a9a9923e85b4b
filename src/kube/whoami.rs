//! Who a target's credentials are, as its API server says (a SelfSubjectReview,
//! authentication.k8s.io/v1: any authenticated user may create one).

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Api;
use kube::api::PostParams;

use crate::identity::KubeIdentity;
use crate::pipeline::model::Target;

/// Asks the target's API server who this process is, within `limit`. The error says what
/// failed, for a note beside the command (the command is sent without a Kubernetes identity).
pub async fn whoami(target: &Target, limit: std::time::Duration) -> Result<KubeIdentity, String> {
    let ask = async {
        let client = super::connect(Some(target))
            .await
            .map_err(|e| e.to_string())?;
        let reviews: Api<SelfSubjectReview> = Api::all(client);
        let review = SelfSubjectReview::default();
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| format!("the SelfSubjectReview was refused: {e}"))?;
        let user = answer.status.and_then(|s| s.user_info).unwrap_or_default();
        match user.username {
            Some(username) if !username.is_empty() => Ok(KubeIdentity {
                username,
                groups: user.groups.unwrap_or_default(),
            }),
            _ => Err("the SelfSubjectReview was answered without a user name".to_owned()),
        }
    };
    tokio::time::timeout(limit, ask).await.unwrap_or_else(|_| {
        Err(format!(
            "no answer to the SelfSubjectReview within {} s",
            limit.as_secs()
        ))
    })
}
