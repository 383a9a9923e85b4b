//! On a target that publishes its Services' addresses (the sandbox serves each Service's
//! simulated traffic on loopback), a Service's address (`http://checkout/`,
//! `http://checkout.shop.svc/`) means the address it publishes: a URL whose host names such
//! a Service goes there. The CLI says which targets publish addresses
//! ([`crate::kube::ServiceAddresses`]); other clusters are never asked, and their URLs are
//! left as written. Smoke and load tests share this.

use std::collections::BTreeMap;

use super::StepCtx;
use crate::kube::addresses::AddressLookup;

/// Rewrites URLs of one step, asking the cluster once per host.
pub struct ServiceEndpoints<'a> {
    ctx: &'a StepCtx,
    source: &'static str,
    lookup: Option<AddressLookup>,
    seen: BTreeMap<String, Option<String>>,
}

impl<'a> ServiceEndpoints<'a> {
    /// For the step of `ctx`; what it finds is logged under `source`.
    pub async fn new(ctx: &'a StepCtx, source: &'static str) -> Self {
        // Only a target that publishes addresses is asked; a real cluster is not asked
        // about every host a test names.
        let lookup = match &ctx.service_addresses {
            Some(addresses) => addresses.lookup(ctx.target.as_ref()).await,
            None => None,
        };
        ServiceEndpoints {
            ctx,
            source,
            lookup,
            seen: BTreeMap::new(),
        }
    }

    /// The loopback URL that stands for `url`, when its host is a Service with a published
    /// address.
    pub async fn rewrite(&mut self, url: &str) -> Option<String> {
        let lookup = self.lookup.clone()?;
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
                let e = lookup.address(&namespace, service).await;
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
