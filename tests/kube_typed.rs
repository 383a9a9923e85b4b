//! glidepath's typed Kubernetes helpers (`kube::workload`, `kube::route`, `kube::lease`)
//! against the embedded sandbox: the demo app's Deployment, Service and HTTPRoute read,
//! scaled, annotated, re-selected and re-weighted as k8s-openapi (or our own) types, and
//! the errors they give as kinds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glidepath::kube::objects::{Cluster as Kube, Readiness, load_manifests};
use glidepath::kube::{Error, lease, route, workload};
use glidepath::pipeline::model::{ClusterTarget, Target};
use glidepath::sandbox::{Cluster, Sandbox, Timing};

async fn start(dir: &Path) -> (Sandbox, Kube) {
    let timing = Timing {
        pod_start: Duration::from_millis(100),
        pod_ready: Duration::from_millis(200),
        ..Timing::default()
    };
    let sandbox = Sandbox::start(0, Cluster::new(32, timing)).await.unwrap();
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();
    let target = Target::Cluster(ClusterTarget {
        context: Some(glidepath::sandbox::CONTEXT.into()),
        namespace: Some("default".into()),
        kubeconfig: Some(kubeconfig.display().to_string()),
    });
    let cluster = Kube::connect(Some(&target)).await.unwrap();
    (sandbox, cluster)
}

/// The demo app at `version`, applied and rolled out.
async fn demo_app(cluster: &Kube) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vars = BTreeMap::from([("version".to_owned(), "1.0.0".to_owned())]);
    for mut o in load_manifests(&["assets/demo-app/".into()], root, &vars).unwrap() {
        cluster.place(&mut o).await.unwrap();
        cluster.apply(&o, false).await.unwrap();
    }
    let begun = Instant::now();
    loop {
        let d = workload::deployment(cluster, "checkout").await.unwrap();
        if d.as_ref().map(workload::deployment_readiness) == Some(Readiness::Ready) {
            return;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(30),
            "never rolled out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_services_and_routes_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let (_sandbox, cluster) = start(dir.path()).await;
    demo_app(&cluster).await;

    let d = workload::deployment(&cluster, "checkout")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(workload::version_of(&d), "1.0.0");
    let hash = workload::current_template_hash(&cluster, &d)
        .await
        .unwrap()
        .expect("the rolled-out ReplicaSet has a pod-template hash");
    assert!(!hash.is_empty());
    assert!(
        workload::deployment(&cluster, "absent")
            .await
            .unwrap()
            .is_none()
    );

    workload::scale(&cluster, "checkout", 2).await.unwrap();
    workload::annotate(&cluster, "checkout", &[("glidepath.dev/x", Some("1"))])
        .await
        .unwrap();
    let d = workload::deployment(&cluster, "checkout")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(workload::annotation(&d, "glidepath.dev/x"), Some("1"));
    workload::annotate(&cluster, "checkout", &[("glidepath.dev/x", None)])
        .await
        .unwrap();
    let d = workload::deployment(&cluster, "checkout")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(workload::annotation(&d, "glidepath.dev/x"), None);

    let selector = |s: &k8s_openapi::api::core::v1::Service| {
        s.spec
            .as_ref()
            .unwrap()
            .selector
            .clone()
            .unwrap_or_default()
    };
    workload::set_service_selector(&cluster, "checkout", &[("pod-template-hash", Some(&hash))])
        .await
        .unwrap();
    let s = workload::service(&cluster, "checkout")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        selector(&s),
        BTreeMap::from([
            ("app".to_owned(), "checkout".to_owned()),
            ("pod-template-hash".to_owned(), hash.clone())
        ])
    );
    workload::set_service_selector(&cluster, "checkout", &[("pod-template-hash", None)])
        .await
        .unwrap();
    let s = workload::service(&cluster, "checkout")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        selector(&s),
        BTreeMap::from([("app".to_owned(), "checkout".to_owned())])
    );

    let share = |w| route::route_share(&cluster, "checkout", "checkout", w);
    assert_eq!(share("checkout-canary").await.unwrap(), Some(0));
    route::set_route_weights(&cluster, "checkout", "checkout", "checkout-canary", 25)
        .await
        .unwrap();
    assert_eq!(share("checkout-canary").await.unwrap(), Some(25));
    let r = route::get(&cluster, "checkout").await.unwrap().unwrap();
    assert_eq!(
        r.spec.other["parentRefs"],
        serde_json::json!([{ "name": "public" }]),
        "what glidepath does not own stays"
    );
    let refs = &r.spec.rules[0].backend_refs;
    assert_eq!(
        refs.iter()
            .map(|b| (b.name.as_str(), b.weight, b.other["port"].as_i64()))
            .collect::<Vec<_>>(),
        [
            ("checkout", Some(75), Some(80)),
            ("checkout-canary", Some(25), Some(80))
        ]
    );
    let e = route::set_route_weights(&cluster, "checkout", "other", "other-canary", 10)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadInput(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "HTTPRoute checkout has no backendRef to the stable Service other"
    );
    let e = route::set_route_weights(&cluster, "absent", "checkout", "checkout-canary", 10)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { answer: None, .. }), "{e:?}");
    assert_eq!(e.to_string(), "HTTPRoute default/absent does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_names_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let (_sandbox, cluster) = start(dir.path()).await;
    let cluster = Arc::new(cluster);
    let name = lease::name("checkout", "prod");
    let held = lease::acquire(cluster.clone(), &name, "ann", false)
        .await
        .unwrap();
    let refused = lease::acquire(cluster.clone(), &name, "bob", false)
        .await
        .err()
        .expect("held by ann");
    let Error::Held {
        subject,
        holder,
        lease,
        since,
    } = &refused
    else {
        panic!("{refused:?}")
    };
    assert_eq!(
        (subject.as_str(), holder.as_str(), lease.as_str()),
        ("checkout-prod", "ann", "default/glidepath-checkout-prod")
    );
    assert!(since.ends_with('Z') && since.len() == 27, "{since}");
    // The same driver takes its own lease again (a resumed run); another may force it.
    let again = lease::acquire(cluster.clone(), &name, "ann", false)
        .await
        .unwrap();
    let forced = lease::acquire(cluster.clone(), &name, "bob", true)
        .await
        .unwrap();
    // A released lease is gone only if its releaser still holds it.
    held.release().await;
    again.release().await;
    let refused = lease::acquire(cluster.clone(), &name, "carol", false)
        .await
        .err()
        .expect("bob holds it");
    assert!(matches!(refused, Error::Held { ref holder, .. } if holder == "bob"));
    forced.release().await;
    lease::acquire(cluster, &name, "carol", false)
        .await
        .unwrap()
        .release()
        .await;
}
