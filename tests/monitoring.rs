//! `monitoring` steps against a cluster (the sandbox, through a kubeconfig): the SLO's
//! rules are applied as a PrometheusRule when the CRD is served, and the step says what to
//! do when it is not.

use std::process::Command;

use glidepath::sandbox::scenario::Scenario;
use glidepath::sandbox::{Cluster, Sandbox, Timing, store::Key};

const SLO: &str = "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: checkout }\nspec:\n  serviceLevel:\n    bad: sum(rate(http_requests_total{service=\"${service}\",code=~\"5..\"}[${window}]))\n    total: sum(rate(http_requests_total{service=\"${service}\"}[${window}]))\n    target: 99.9%\n    window: 30d\n";

fn pipeline(kubeconfig: &str) -> String {
    format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: checkout }}\nspec:\n  target: {{ context: glidepath-sandbox, namespace: shop, kubeconfig: {kubeconfig} }}\n  stages:\n    - name: prod\n      steps:\n        - monitoring: {{ slo: slo.yaml }}\n"
    )
}

fn run(rt: &tokio::runtime::Runtime, with_crd: bool) -> (i32, String, Option<serde_json::Value>) {
    // The platform preset serves PrometheusRule; the missing-infra scenario leaves it out.
    let scenario = Scenario::named(if with_crd { "happy" } else { "missing-infra" }).unwrap();
    let sandbox = rt
        .block_on(Sandbox::start(
            0,
            Cluster::with_scenario(32, Timing::default(), scenario),
        ))
        .unwrap();
    glidepath::sandbox::preset::platform(&sandbox.cluster);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();
    std::fs::write(dir.path().join("slo.yaml"), SLO).unwrap();
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(&path, pipeline(kubeconfig.to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["run", path.to_str().unwrap(), "--headless"])
        .env("GLIDEPATH_HOME", dir.path())
        .output()
        .unwrap();
    let key = Key {
        group: "monitoring.coreos.com".into(),
        plural: "prometheusrules".into(),
        namespace: "shop".into(),
        name: "glidepath-slo-checkout".into(),
    };
    let object = sandbox.cluster.get(&key).map(|o| (*o).clone());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        object,
    )
}

#[test]
fn rules_are_applied_as_a_prometheus_rule_when_the_crd_is_served() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (code, stderr, object) = run(&rt, true);
    assert_eq!(code, 0, "{stderr}");
    let object = object.expect("the PrometheusRule exists");
    assert_eq!(
        object["spec"]["groups"][0]["rules"]
            .as_array()
            .map(Vec::len),
        Some(9)
    );
    assert_eq!(
        object["metadata"]["managedFields"][0]["manager"],
        "glidepath"
    );
    assert!(
        object["spec"]["groups"][0]["rules"][0]["expr"]
            .as_str()
            .unwrap()
            .contains("service=\"checkout\"")
    );

    let (code, stderr, object) = run(&rt, false);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the cluster does not serve PrometheusRule"),
        "{stderr}"
    );
    assert!(object.is_none());
}
