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
        url: url.to_owned(),
        method: hyper::Method::GET,
        headers: Vec::new(),
        body: Default::default(),
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::ZERO,
        timeout: Duration::from_secs(5),
        model,
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
    assert_eq!(slis["load.error_ratio"], s.error_ratio);
    assert_eq!(slis["load.latency_p95_ms"], s.latency_ms.p95);
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
