//! The load generator against local servers with known behaviour: the measured error ratio
//! matches the truth; the open model shows a stall that a closed loop hides (coordinated
//! omission); unreachable, silent and garbage-speaking servers are errors by kind and the
//! test still ends on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use glidepath::loadgen::{Model, Plan, run};

/// A server whose n-th request (from 0) is answered by `f(n)`: (status, delay).
async fn server(f: impl Fn(u64) -> (u16, Duration) + Send + Sync + 'static) -> String {
    let count = Arc::new(AtomicU64::new(0));
    let f = Arc::new(f);
    let app = axum::Router::new().fallback(move || {
        let (count, f) = (count.clone(), f.clone());
        async move {
            let (status, delay) = f(count.fetch_add(1, Ordering::SeqCst));
            tokio::time::sleep(delay).await;
            (axum::http::StatusCode::from_u16(status).unwrap(), "ok")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn plan(url: &str, model: Model, seconds: f64) -> Plan {
    Plan {
        timeout: Duration::from_secs(5),
        ..Plan::get(url, model, Duration::from_secs_f64(seconds))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_measured_error_ratio_is_the_true_one() {
    let url = server(|n| {
        (
            if n % 10 == 3 { 503 } else { 200 },
            Duration::from_millis(2),
        )
    })
    .await;
    let s = run(
        plan(
            &url,
            Model::Open {
                rate: 400.0,
                connections: 8,
            },
            2.0,
        ),
        |_| {},
    )
    .await
    .unwrap();
    assert!((s.error_ratio - 0.10).abs() < 0.01, "{s:?}");
    assert_eq!(s.errors.keys().collect::<Vec<_>>(), vec!["503"]);
    assert!((s.rps - 400.0).abs() < 40.0, "{s:?}");
    assert!(s.latency_ms.p50 >= 2.0, "{s:?}");
    let slis = s.slis();
    assert_eq!(slis["load.error_ratio"], Some(s.error_ratio));
    assert_eq!(slis["load.latency_p95_ms"], Some(s.latency_ms.p95));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_sees_the_stall_a_closed_loop_hides() {
    // Every hundredth request stalls for a second.
    let stall = |n: u64| {
        (
            200,
            if n % 100 == 50 {
                Duration::from_secs(1)
            } else {
                Duration::ZERO
            },
        )
    };
    let url = server(stall).await;
    let closed = run(plan(&url, Model::Closed { connections: 1 }, 3.0), |_| {})
        .await
        .unwrap();
    let url = server(stall).await;
    let open = run(
        plan(
            &url,
            Model::Open {
                rate: 200.0,
                connections: 1,
            },
            3.0,
        ),
        |_| {},
    )
    .await
    .unwrap();
    // A closed loop waits politely: only the stalled requests are slow.
    assert!(
        closed.latency_ms.p90 < 20.0,
        "closed {:?}",
        closed.latency_ms
    );
    // Users keep arriving during the stall: the requests queued behind it count their wait.
    assert!(open.latency_ms.p90 > 100.0, "open {:?}", open.latency_ms);
    assert!(open.latency_ms.max >= 1000.0, "open {:?}", open.latency_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_servers_are_errors_by_kind_and_the_test_ends_on_time() {
    assert!(
        run(
            plan("ftp://x/", Model::Closed { connections: 1 }, 1.0),
            |_| {}
        )
        .await
        .is_err()
    );
    assert!(
        run(
            plan(
                "http://127.0.0.1:notaport/",
                Model::Closed { connections: 1 },
                1.0
            ),
            |_| {}
        )
        .await
        .is_err()
    );

    // Nobody listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let s = run(
        plan(
            &format!("http://127.0.0.1:{port}/"),
            Model::Closed { connections: 2 },
            1.0,
        ),
        |_| {},
    )
    .await
    .unwrap();
    assert!(s.errors.get("connect").copied().unwrap_or(0) > 0, "{s:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut p = plan(
        &format!("http://{addr}/"),
        Model::Open {
            rate: 20.0,
            connections: 4,
        },
        1.0,
    );
    p.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let s = run(p, |_| {}).await.unwrap();
    assert!(s.errors.get("timeout").copied().unwrap_or(0) > 0, "{s:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Answers with garbage, then closes.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = garbage.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = garbage.accept().await {
            let _ = s.write_all(b"SSH-2.0-nope\r\n\r\n").await;
        }
    });
    let s = run(
        plan(
            &format!("http://{addr}/"),
            Model::Closed { connections: 1 },
            0.5,
        ),
        |_| {},
    )
    .await
    .unwrap();
    assert!(s.errors.get("io").copied().unwrap_or(0) > 0, "{s:?}");
    assert_eq!(s.error_ratio, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_arrives_every_second() {
    let url = server(|_| (200, Duration::ZERO)).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    run(
        plan(
            &url,
            Model::Open {
                rate: 100.0,
                connections: 2,
            },
            2.0,
        ),
        move |p| log.lock().unwrap().push(p),
    )
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!((seen[0].requests as i64 - 100).abs() <= 10, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_step_fails_its_gate_when_p95_is_over_the_threshold() {
    use glidepath::engine::{self, Emitter, RunOptions};
    use glidepath::events::Status;
    let url = server(|_| (200, Duration::from_millis(30))).await;
    let text = format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  stages:\n    - name: perf\n      steps:\n        - name: quick\n          test: {{ load: {{ url: \"{url}\", duration: 1s, rate: 50, thresholds: {{ latency_p95_ms: 500, error_ratio: 0.01 }} }} }}\n        - name: strict\n          test: {{ load: {{ url: \"{url}\", duration: 1s, connections: 2, thresholds: {{ latency_p95_ms: 10 }} }} }}\n"
    );
    let vars = glidepath::pipeline::Variables {
        sets: Default::default(),
        use_env: false,
    };
    let p = Arc::new(
        glidepath::pipeline::load_str(&text, std::path::Path::new("p.yaml"), &vars).unwrap(),
    );
    let handle = engine::start_with(p, Emitter::new(1, 1, None), RunOptions::default(), |_| {});
    let outcome = handle.wait().await;
    assert_eq!(outcome.status, Status::Failed, "{}", outcome.reason);
    assert!(outcome.reason.contains("strict"), "{}", outcome.reason);
    assert!(
        outcome.reason.contains("load.latency_p95_ms"),
        "{}",
        outcome.reason
    );
}

/// A server that records what it receives: version, method, path, one header and the body.
type Seen = Arc<std::sync::Mutex<Vec<(hyper::Version, String, String, String)>>>;

fn recording_service(
    seen: Seen,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = hyper::Response<http_body_util::Full<hyper::body::Bytes>>,
    Error = std::convert::Infallible,
    Future = impl Future<
        Output = Result<
            hyper::Response<http_body_util::Full<hyper::body::Bytes>>,
            std::convert::Infallible,
        >,
    > + Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        async move {
            use http_body_util::BodyExt;
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let tag = parts
                .headers
                .get("x-tag")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            seen.lock().unwrap().push((
                parts.version,
                format!("{} {}", parts.method, parts.uri.path()),
                tag,
                String::from_utf8_lossy(&body).into_owned(),
            ));
            Ok(hyper::Response::new(http_body_util::Full::new(
                hyper::body::Bytes::from_static(b"ok"),
            )))
        }
    })
}

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on loopback, or TLS with ALPN when `cert`
/// is given.
async fn recording_server(cert: Option<&rcgen::CertifiedKey<rcgen::KeyPair>>) -> (u16, Seen) {
    let seen: Seen = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = cert.map(|c| {
        let provider = glidepath::tls::provider();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![c.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(c.signing_key.serialize_der().into()),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let service = recording_service(seen.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, service) = (acceptor.clone(), service.clone());
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                match acceptor {
                    Some(a) => {
                        if let Ok(tls) = a.accept(stream).await {
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_requests_are_sent_in_proportion_with_their_method_headers_and_body() {
    use glidepath::loadgen::Request;
    let (port, seen) = recording_server(None).await;
    let base = format!("http://127.0.0.1:{port}");
    let mut p = plan(&base, Model::Closed { connections: 3 }, 1.0);
    p.requests = vec![
        Request {
            weight: 3,
            ..Request::get(format!("{base}/browse"))
        },
        Request {
            method: hyper::Method::POST,
            url: format!("{base}/cart"),
            headers: vec![("x-tag".into(), "buyer".into())],
            body: hyper::body::Bytes::from_static(b"{\"sku\":7}"),
            weight: 1,
        },
    ];
    let s = run(p, |_| {}).await.unwrap();
    assert_eq!(s.error_ratio, 0.0, "{s:?}");
    let seen = seen.lock().unwrap();
    let browse = seen.iter().filter(|r| r.1 == "GET /browse").count() as f64;
    let carts: Vec<_> = seen.iter().filter(|r| r.1 == "POST /cart").collect();
    assert!(seen.len() > 100, "{}", seen.len());
    let share = carts.len() as f64 / (browse + carts.len() as f64);
    assert!((share - 0.25).abs() < 0.01, "cart share {share}");
    assert!(carts.iter().all(|r| r.2 == "buyer" && r.3 == "{\"sku\":7}"));
    assert!(seen.iter().all(|r| r.0 == hyper::Version::HTTP_11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_prior_knowledge_over_cleartext() {
    let (port, seen) = recording_server(None).await;
    let mut p = plan(
        &format!("http://127.0.0.1:{port}/h2"),
        Model::Closed { connections: 2 },
        0.5,
    );
    p.protocol = glidepath::loadgen::Protocol::Http2;
    let s = run(p, |_| {}).await.unwrap();
    assert!(s.requests > 10 && s.error_ratio == 0.0, "{s:?}");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|r| r.0 == hyper::Version::HTTP_2 && r.1 == "GET /h2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_a_given_ca_refuses_an_unknown_one_and_negotiates_http2() {
    use glidepath::loadgen::Protocol;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let (port, seen) = recording_server(Some(&cert)).await;
    let url = format!("https://localhost:{port}/secure");
    let https = |protocol: Protocol, ca_file: Option<&std::path::Path>, insecure: bool| {
        let mut p = plan(&url, Model::Closed { connections: 2 }, 0.5);
        p.protocol = protocol;
        p.tls.ca_file = ca_file.map(|c| c.to_path_buf());
        p.tls.insecure = insecure;
        p
    };
    // Unknown issuer: every request is a `tls` error, and the test still ends on time.
    let started = Instant::now();
    let s = run(https(Protocol::Http1, None, false), |_| {})
        .await
        .unwrap();
    assert_eq!(s.error_ratio, 1.0, "{s:?}");
    assert_eq!(s.errors.keys().collect::<Vec<_>>(), vec!["tls"], "{s:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(seen.lock().unwrap().is_empty());

    // The CA file makes it trusted: HTTP/1.1, then HTTP/2 by ALPN.
    for (protocol, version) in [
        (Protocol::Http1, hyper::Version::HTTP_11),
        (Protocol::Http2, hyper::Version::HTTP_2),
    ] {
        seen.lock().unwrap().clear();
        let s = run(https(protocol, Some(&ca), false), |_| {})
            .await
            .unwrap();
        assert!(s.requests > 10 && s.error_ratio == 0.0, "{s:?}");
        assert!(seen.lock().unwrap().iter().all(|r| r.0 == version));
    }
    // --insecure accepts the certificate without the CA.
    let s = run(https(Protocol::Http1, None, true), |_| {})
        .await
        .unwrap();
    assert!(s.requests > 10 && s.error_ratio == 0.0, "{s:?}");
    // A CA file that is not there is refused before anything is sent.
    let missing = dir.path().join("missing.pem");
    assert!(
        run(https(Protocol::Http1, Some(&missing), false), |_| {})
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_raises_the_rate_stage_by_stage() {
    use glidepath::loadgen::RampStage;
    let url = server(|_| (200, Duration::ZERO)).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let p = plan(
        &url,
        Model::Ramp {
            from: 0.0,
            stages: vec![
                RampStage {
                    duration: Duration::from_secs(2),
                    rate: 200.0,
                },
                RampStage {
                    duration: Duration::from_secs(1),
                    rate: 200.0,
                },
            ],
            connections: 8,
        },
        0.0,
    );
    let s = run(p, move |p| log.lock().unwrap().push(p.requests))
        .await
        .unwrap();
    // 0 → 200/s over 2 s: 50 then 150 requests; then 200 on the plateau.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (got, want) in seen.iter().zip([50, 150, 200]) {
        assert!((*got as i64 - want).abs() <= 12, "{seen:?}");
    }
    assert!((s.requests as i64 - 400).abs() <= 12, "{s:?}");
    assert!((s.seconds - 3.0).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluate_gate_judges_the_load_results_without_prometheus() {
    use glidepath::engine::{self, Emitter, RunOptions};
    use glidepath::events::{Event, Status, Verdict};
    let url = server(|_| (200, Duration::from_millis(30))).await;
    let dir = tempfile::tempdir().unwrap();
    let slo = |limit: u32| {
        format!(
            "apiVersion: glidepath/v1\nkind: SLO\nmetadata: {{ name: perf }}\nspec:\n  objectives:\n    - sli: load.latency_p95_ms\n      pass: [\"<{limit}\"]\n    - sli: load.error_ratio\n      pass: [\"<=0.01\"]\n"
        )
    };
    std::fs::write(dir.path().join("lax.yaml"), slo(500)).unwrap();
    std::fs::write(dir.path().join("strict.yaml"), slo(10)).unwrap();
    let text = format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  stages:\n    - name: perf\n      steps:\n        - test: {{ load: {{ url: \"{url}\", duration: 1s, rate: 50 }} }}\n        - name: lax\n          evaluate: {{ slo: lax.yaml }}\n        - name: strict\n          evaluate: {{ slo: strict.yaml }}\n"
    );
    let vars = glidepath::pipeline::Variables {
        sets: Default::default(),
        use_env: false,
    };
    let p =
        Arc::new(glidepath::pipeline::load_str(&text, &dir.path().join("p.yaml"), &vars).unwrap());
    let mut rx = None;
    let handle = engine::start_with(p, Emitter::new(1, 1, None), RunOptions::default(), |tx| {
        rx = Some(tx.subscribe())
    });
    let mut rx = rx.unwrap();
    let outcome = handle.wait().await;
    assert_eq!(outcome.status, Status::Failed, "{}", outcome.reason);
    assert!(
        outcome.reason.starts_with("perf/strict failed"),
        "{}",
        outcome.reason
    );
    let mut verdicts = Vec::new();
    let mut measured = None;
    while let Ok(env) = rx.try_recv() {
        match env.event {
            Event::StepFinished {
                step,
                verdict: Some(v),
                evidence,
                ..
            } if step != "test" => verdicts.push((step, v, evidence)),
            Event::Measured { values, .. } => measured = Some(values),
            _ => {}
        }
    }
    // The load test journaled its SLIs; the lax gate passed on them, the strict one failed
    // on p95 with the measured value as evidence.
    let measured = measured.expect("the load test journals what it measured");
    assert!(measured["load.latency_p95_ms"] >= 30.0, "{measured:?}");
    assert_eq!(verdicts[0].0, "lax");
    assert_eq!(verdicts[0].1, Verdict::Pass);
    assert_eq!(verdicts[1].0, "strict");
    assert_eq!(verdicts[1].1, Verdict::Fail);
    let p95 = verdicts[1]
        .2
        .iter()
        .find(|e| e.check.contains("load.latency_p95_ms"))
        .unwrap();
    assert_eq!(p95.verdict, Verdict::Fail);
}

#[test]
fn load_tests_are_checked_when_the_pipeline_loads() {
    let load = |test: &str| {
        let text = format!(
            "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  stages:\n    - name: perf\n      steps:\n        - test: {{ load: {test} }}\n"
        );
        let vars = glidepath::pipeline::Variables {
            sets: Default::default(),
            use_env: false,
        };
        glidepath::pipeline::load_str(&text, std::path::Path::new("p.yaml"), &vars)
            .map(|_| ())
            .map_err(|e| e.message)
    };
    load("{ url: \"http://shop/\", duration: 1s }").unwrap();
    load("{ url: \"http://shop/\", rate: 5, stages: [ { duration: 10s, rate: 50 } ] }").unwrap();
    let err = |test: &str| load(test).unwrap_err();
    assert!(err("{ url: \"ftp://shop/\", duration: 1s }").contains("not http or https"));
    assert!(err("{ url: \"http://shop/\" }").contains("needs a `duration`"));
    assert!(
        err("{ url: \"http://shop/\", duration: 1s, stages: [ { duration: 1s, rate: 5 } ] }")
            .contains("leave `duration` out")
    );
    assert!(
        err("{ url: \"http://shop/\", duration: 1s, thresholds: { latency_p95ms: 5 } }")
            .contains("did you mean `latency_p95_ms`")
    );
    assert!(
        err("{ url: \"http://shop/\", duration: 1s, requests: [ { path: /a, weight: 0 } ] }")
            .contains("weight 0")
    );
    assert!(err("{ duration: 1s, requests: [ { path: /a } ] }").contains("needs the test's `url`"));
    assert!(
        err("{ url: \"https://shop/\", duration: 1s, caFile: missing.pem }")
            .contains("missing.pem")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queued_past_their_timeout_are_timeouts_not_dropped() {
    // Every answer takes 2 s; with a 300 ms timeout and two connections, nearly every
    // request due at 100/s waits in the queue past its time.
    let url = server(|_| (200, Duration::from_secs(2))).await;
    let mut p = plan(
        &url,
        Model::Open {
            rate: 100.0,
            connections: 2,
        },
        1.0,
    );
    p.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let s = run(p, |_| {}).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    // All hundred that were due are counted, as timeouts, with their waits as latency.
    assert!((s.requests as i64 - 100).abs() <= 2, "{s:?}");
    assert_eq!(s.answered, 0, "{s:?}");
    assert_eq!(s.errors.get("timeout").copied(), Some(s.requests), "{s:?}");
    assert_eq!(s.rps, 0.0);
    assert!(s.latency_ms.min >= 300.0, "{s:?}");
}
