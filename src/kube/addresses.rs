//! Where a target's Services can be reached from this machine. A cluster's Services are
//! normally reachable only inside it; a target that serves each Service on a loopback port
//! (the embedded sandbox) publishes that address in an annotation. The CLI, which decides
//! what each target is, describes such a target with [`ServiceAddresses`]; steps look
//! addresses up through it, so a cluster that publishes none is never asked.

use ::kube::{Api, Client};
use k8s_openapi::api::core::v1::Service;

use crate::pipeline::model::Target;

/// "The Services of kubeconfig context `context` are reachable at the address their
/// annotation `annotation` names."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddresses {
    context: String,
    annotation: String,
}

impl ServiceAddresses {
    /// Services reached through `context` publish their address in `annotation`.
    pub fn new(context: impl Into<String>, annotation: impl Into<String>) -> Self {
        ServiceAddresses {
            context: context.into(),
            annotation: annotation.into(),
        }
    }

    /// The annotation that carries a Service's address: a copy of a Service (a release's
    /// canary Service) must not carry the original's.
    pub fn annotation(&self) -> &str {
        &self.annotation
    }

    /// Whether `target` is reached through the context whose Services publish addresses.
    pub fn serves(&self, target: Option<&Target>) -> bool {
        matches!(target, Some(Target::Cluster(c)) if c.context.as_deref() == Some(self.context.as_str()))
    }

    /// A lookup of `target`'s Service addresses; `None` when the target publishes none, or
    /// when no client can be built for it (then nothing is rewritten either).
    pub async fn lookup(&self, target: Option<&Target>) -> Option<AddressLookup> {
        if !self.serves(target) {
            return None;
        }
        let client = super::connect(target).await.ok()?;
        Some(AddressLookup {
            client,
            annotation: self.annotation.clone(),
        })
    }
}

/// Reads published Service addresses from one cluster.
#[derive(Clone)]
pub struct AddressLookup {
    client: Client,
    annotation: String,
}

impl AddressLookup {
    /// The address Service `namespace/name` publishes; a missing Service, a Service
    /// without the annotation and a failed request all count as none.
    pub async fn address(&self, namespace: &str, name: &str) -> Option<String> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|s| s.metadata.annotations)
            .and_then(|mut a| a.remove(&self.annotation))
    }
}
