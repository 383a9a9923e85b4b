//! The journal under load, for BENCHMARKS.md: 50 runs driven at once against one
//! PostgreSQL and against one SQLite file, each through its own `Journal` and the engine's
//! `Emitter` (as 50 `glidepath run` processes would). Each run emits, per step, a state event
//! (`step_started`, committed before `emit` returns), ten log lines (queued, batched) and a
//! second state event (`step_finished`). Figures: events per second, the commit latency of a
//! state event (p50, p99, max: the time `emit` blocks), and CPU per event (this process, plus
//! the PostgreSQL server's own processes when this bench started the server). Afterwards every
//! run's events are read back and compared with what was emitted: sequence numbers dense from
//! 1 and in order, nothing lost, nothing changed; the bench fails otherwise.
//!
//! Run: `cargo bench --bench journal` (release build). It starts a throwaway PostgreSQL from
//! Debian's `postgresql` with `fsync` on (as a production server runs; tests run theirs with
//! it off). `GLIDEPATH_BENCH_POSTGRES=postgres://...` uses that server instead (an empty
//! database; its CPU is then not counted). Options after `--`: `--runs N` (50), `--steps N`
//! (40), `--logs N` (10 per step).

#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use glidepath::engine::Emitter;
use glidepath::events::{Event, Status};
use glidepath::store::{Journal, Location, NewRun, Store};

#[derive(Clone, Copy)]
struct Shape {
    runs: usize,
    steps: usize,
    logs: usize,
}

impl Shape {
    fn from_args() -> Shape {
        let mut shape = Shape {
            runs: 50,
            steps: 40,
            logs: 10,
        };
        let args: Vec<String> = std::env::args().collect();
        for pair in args.windows(2) {
            let value = || -> usize {
                pair[1]
                    .parse()
                    .unwrap_or_else(|_| panic!("{} takes a number, not {:?}", pair[0], pair[1]))
            };
            match pair[0].as_str() {
                "--runs" => shape.runs = value(),
                "--steps" => shape.steps = value(),
                "--logs" => shape.logs = value(),
                _ => {}
            }
        }
        shape
    }

    fn events_per_run(&self) -> usize {
        self.steps * (2 + self.logs)
    }
}

/// The events run `r` emits, in order, each marked as state (`true`) or log line.
fn script(shape: Shape, r: usize) -> Vec<(bool, Event)> {
    let mut events = Vec::with_capacity(shape.events_per_run());
    for s in 0..shape.steps {
        let (stage, step) = (format!("stage-{}", s % 4), format!("step-{s}"));
        events.push((
            true,
            Event::StepStarted {
                stage: stage.clone(),
                step: step.clone(),
                kind: "command".into(),
            },
        ));
        for l in 0..shape.logs {
            events.push((
                false,
                Event::Log {
                    stage: stage.clone(),
                    step: step.clone(),
                    source: "stdout".into(),
                    line: format!("run {r} step {s} line {l}: 412 rps err 0.1% p95 180ms"),
                },
            ));
        }
        events.push((
            true,
            Event::StepFinished {
                stage,
                step,
                status: Status::Passed,
                verdict: None,
                summary: format!("step {s} of run {r} passed"),
                evidence: Vec::new(),
                evaluation: None,
            },
        ));
    }
    events
}

/// CPU seconds this process has used (all threads, user and system).
fn own_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds used by a PostgreSQL server: the postmaster, its live children, and the
/// children it has reaped (backends that ended count there).
fn server_cpu(postmaster: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // Fields after the command's closing parenthesis: state is 3, ppid 4, utime 14.
    let stat = |pid: &str| -> Option<(u32, [u64; 4])> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        let n = |i: usize| {
            rest.get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some((n(4) as u32, [n(14), n(15), n(16), n(17)]))
    };
    let mut ticks = stat(&postmaster.to_string())
        .map(|(_, t)| t.iter().sum::<u64>())
        .unwrap_or(0);
    for (_, t) in children(postmaster, &stat) {
        ticks += t[0] + t[1];
    }
    ticks as f64 / tick
}

type Stat<'a> = &'a dyn Fn(&str) -> Option<(u32, [u64; 4])>;

/// The live children of `postmaster` (pid, CPU ticks).
fn children(postmaster: u32, stat: Stat<'_>) -> Vec<(u32, [u64; 4])> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.parse::<u32>().ok()?;
            let (ppid, t) = stat(&name)?;
            (ppid == postmaster).then_some((pid, t))
        })
        .collect()
}

/// How many processes the server has now.
fn server_processes(postmaster: u32) -> usize {
    let stat = |pid: &str| -> Option<(u32, [u64; 4])> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        Some((rest.get(1)?.parse().ok()?, [0; 4]))
    };
    children(postmaster, &stat).len()
}

struct Figures {
    events: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    own_cpu: f64,
    server_cpu: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Drives `shape.runs` runs at once on `location`, then checks what the journal kept.
fn drive(location: &Location, shape: Shape, postmaster: Option<u32>) -> Figures {
    let store = Store::open(location).unwrap();
    let sets = Default::default();
    let runs: Vec<i64> = (0..shape.runs)
        .map(|r| {
            let name = format!("load-{r}");
            store
                .create_run(&NewRun {
                    pipeline: &name,
                    service: &name,
                    path: "bench.yaml",
                    source: "",
                    sets: &sets,
                    stage: None,
                })
                .unwrap()
        })
        .collect();
    // Every run's writer is connected before the clock starts, as a driver is before it acts.
    let barrier = Arc::new(Barrier::new(shape.runs + 1));
    let handles: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(r, &run)| {
            let journal = Journal::open(location).unwrap();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let emitter = Emitter::new(run, 1, Some(journal));
                let script = script(shape, r);
                let mut latencies = Vec::with_capacity(shape.steps * 2);
                barrier.wait();
                for (state, event) in script {
                    if state {
                        let t = Instant::now();
                        emitter.emit(event).unwrap();
                        latencies.push(t.elapsed());
                    } else {
                        emitter.log(event);
                    }
                }
                // Dropping the emitter drops the journal, which commits the queued lines.
                drop(emitter);
                latencies
            })
        })
        .collect();
    let (cpu0, server0) = (own_cpu(), postmaster.map(server_cpu));
    let busy = postmaster.map(server_processes).unwrap_or(0);
    barrier.wait();
    let start = Instant::now();
    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let wall = start.elapsed();
    let own = own_cpu() - cpu0;
    // The runs' backends end with their journals; their CPU counts once the postmaster has
    // reaped them (it is then its children's time), so wait for that, briefly.
    if let Some(pm) = postmaster {
        let deadline = Instant::now() + Duration::from_secs(5);
        while server_processes(pm) + shape.runs > busy && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
    let server = postmaster.map(server_cpu).zip(server0).map(|(a, b)| a - b);
    latencies.sort();
    verify(&store, &runs, shape);
    Figures {
        events: shape.runs * shape.events_per_run(),
        wall,
        latencies,
        own_cpu: own,
        server_cpu: server,
    }
}

/// Every run's journal holds exactly what it emitted: dense sequence numbers from 1, in
/// order, every event as it was sent.
fn verify(store: &Store, runs: &[i64], shape: Shape) {
    for (r, &run) in runs.iter().enumerate() {
        let kept = store.events(run).unwrap();
        let sent = script(shape, r);
        assert_eq!(
            kept.len(),
            sent.len(),
            "run {run}: {} events kept of {} emitted",
            kept.len(),
            sent.len()
        );
        for (i, (env, (_, event))) in kept.iter().zip(&sent).enumerate() {
            assert_eq!(
                env.seq,
                i as u64 + 1,
                "run {run}: sequence numbers not dense"
            );
            assert_eq!(&env.event, event, "run {run}: event {} out of order", i + 1);
        }
    }
}

fn report(name: &str, shape: Shape, f: &Figures) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let cpu = f.own_cpu + f.server_cpu.unwrap_or(0.0);
    let server = match f.server_cpu {
        Some(s) => format!(
            " ({:.0} us glidepath + {:.0} us server)",
            f.own_cpu / f.events as f64 * 1e6,
            s / f.events as f64 * 1e6
        ),
        None => " (glidepath only; the server's CPU is not counted)".into(),
    };
    println!(
        "{name}: {} runs at once, {} events ({} state) in {:.2} s: {:.0} events/s; state event commit p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; CPU {:.0} us per event{server}; every run's {} events kept, sequence numbers dense and in order",
        shape.runs,
        f.events,
        f.latencies.len(),
        f.wall.as_secs_f64(),
        f.events as f64 / f.wall.as_secs_f64(),
        ms(percentile(&f.latencies, 0.5)),
        ms(percentile(&f.latencies, 0.99)),
        ms(*f.latencies.last().unwrap()),
        cpu / f.events as f64 * 1e6,
        shape.events_per_run()
    );
}

fn main() {
    let shape = Shape::from_args();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Location::Sqlite(dir.path().join("journal.db"));
    let f = drive(&sqlite, shape, None);
    report("SQLite (synchronous=FULL)", shape, &f);
    let sqlite_p99 = percentile(&f.latencies, 0.99);

    let (server, url) = match std::env::var("GLIDEPATH_BENCH_POSTGRES") {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            let server = postgres::Server::throwaway_durable();
            let url = server.url.clone();
            (Some(server), url)
        }
    };
    let location = Location::parse(std::path::Path::new(&url)).unwrap();
    let postmaster = server.as_ref().and_then(|s| s.postmaster_pid());
    let f = drive(&location, shape, postmaster);
    let label = if server.is_some() {
        "PostgreSQL (loopback, fsync on)"
    } else {
        "PostgreSQL (GLIDEPATH_BENCH_POSTGRES)"
    };
    report(label, shape, &f);
    let pg_p99 = percentile(&f.latencies, 0.99);
    println!(
        "PostgreSQL p99 minus SQLite p99 for a state event: {:+.2} ms (target: at most +5 ms)",
        (pg_p99.as_secs_f64() - sqlite_p99.as_secs_f64()) * 1e3
    );
}
