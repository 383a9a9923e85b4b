//! On the sandbox, a Service's address (`http://checkout/`, `http://checkout.shop.svc/`)
//! means the loopback endpoint that serves its simulated traffic: a URL whose host names a
//! Service carrying `sandbox.glidepath.dev/endpoint` goes there. A real cluster's Services
//! carry no such annotation, so their URLs are left as written. Smoke and load tests share
//! this.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::{Api, Client};

use super::StepCtx;
use crate::sandbox::workload::annotations::ENDPOINT;

/// Rewrites URLs of one step, asking the cluster once per host.
pub struct SandboxEndpoints<'a> {
    ctx: &'a StepCtx,
    source: &'static str,
    client: Option<Client>,
    seen: BTreeMap<String, Option<String>>,
}

impl<'a> SandboxEndpoints<'a> {
    /// For the step of `ctx`; what it finds is logged under `source`.
    pub async fn new(ctx: &'a StepCtx, source: &'static str) -> Self {
        // Only the embedded sandbox (its kubeconfig context) has such endpoints; a real
        // cluster is not asked about every host a test names.
        let client = match &ctx.target {
            Some(crate::pipeline::model::Target::Cluster(c))
                if c.context.as_deref() == Some(crate::sandbox::CONTEXT) =>
            {
                crate::kube::client(ctx.target.as_ref()).await.ok()
            }
            _ => None,
        };
        SandboxEndpoints {
            ctx,
            source,
            client,
            seen: BTreeMap::new(),
        }
    }

    /// The loopback URL that stands for `url`, when its host is a sandbox Service.
    pub async fn rewrite(&mut self, url: &str) -> Option<String> {
        let client = self.client.clone()?;
        let uri = url.parse::<hyper::Uri>().ok()?;
        let host = uri.host()?;
        if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
            return None;
        }
        let endpoint = match self.seen.get(host) {
            Some(e) => e.clone(),
            None => {
                let mut parts = host.trim_end_matches(".svc.cluster.local").split('.');
                let service = parts.next().unwrap_or_default();
                let namespace = match parts.next() {
                    Some(ns) if ns != "svc" => ns.to_owned(),
                    _ => crate::kube::namespace(self.ctx.target.as_ref()),
                };
                let api: Api<Service> = Api::namespaced(client, &namespace);
                let e = api
                    .get_opt(service)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| s.metadata.annotations)
                    .and_then(|a| a.get(ENDPOINT).cloned());
                if let Some(e) = &e {
                    self.ctx.io.log(
                        self.source,
                        format!("{host} is sandbox Service {namespace}/{service}: sending to {e}"),
                    );
                }
                self.seen.insert(host.to_owned(), e.clone());
                e
            }
        }?;
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        Some(format!("{}{path}", endpoint.trim_end_matches('/')))
    }
}
