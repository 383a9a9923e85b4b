//! A stable-Rust fuzzer for what reads hostile text: the pipeline loader, the SLO loaders
//! (glidepath, Keptn slo.yaml with sli.yaml, OpenSLO) and the sandbox's PromQL.
//!
//! `cargo test --test fuzz` replays every file of `fuzz/corpus/<target>/` and a fixed,
//! seeded batch of mutations of it. `cargo test --test fuzz -- --seconds N [--seed S]
//! [TARGET...]` mutates for N seconds per target (README, "Input limits"). A panic, or an
//! input that runs longer than HANG, fails the run; the input is saved under
//! `fuzz/artifacts/<target>/` to replay with `--replay FILE`. A crash that aborts the
//! process (a stack overflow) leaves the input in `fuzz/artifacts/<target>/last`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glidepath::pipeline::load::{Variables, load_str};
use glidepath::sandbox::promql::{Evaluator, parse};
use glidepath::sandbox::tsdb::{Db, labels};
use glidepath::slo::Slo;

/// Longer than any input may take: past this, the input counts as a hang.
const HANG: Duration = Duration::from_secs(10);
/// Mutated inputs are cut to this size; the corpus files may be larger.
const MAX_LEN: usize = 64 * 1024;
/// Mutations per target when no `--seconds` is given (a plain `cargo test`).
const DEFAULT_MUTATIONS: usize = 300;

/// The message of the latest panic, kept by the panic hook.
static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

const TARGETS: [&str; 3] = ["pipeline", "slo", "promql"];

/// Fragments mutations insert: the syntax each reader cares about, and known trouble.
const TOKENS: &[&str] = &[
    "- ",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "\n",
    "  ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "---\n",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "!!str ",
    "? ",
    ",",
    "#",
    "${",
    "${window}",
    "\u{feff}",
    "\t",
    "\\",
    "99999999999999999999999d",
    "1e308",
    "-0",
    ".nan",
    ".inf",
    "0x10",
    "5m",
    "0s",
    "30d",
    "timeout: ",
    "window: ",
    "weight: ",
    "sum(",
    "rate(",
    "[5m]",
    "[1m:10s]",
    " by (le) ",
    "histogram_quantile(0.9, ",
    "offset 5m",
    " @ 100",
    " / ",
    " == bool ",
    " or ",
    " unless ",
    "{service=\"web\"}",
    "=~\".*\"",
    "quantile_over_time(",
    "count_values(\"x\", ",
    "topk(",
    "absent(",
    "label_replace(",
    "vector(1)",
    "scalar(",
    ")",
    "(",
    "99999999999999999999",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next() as u8),
            2 if at < out.len() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 if at < out.len() => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let piece = out[at..end].to_vec();
                for _ in 0..1 + rng.below(8) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(256)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.bytes());
            }
        }
    }
    out.truncate(MAX_LEN);
    out
}

/// What one target does with one input: any `Err` is fine, a panic is not.
struct Target {
    name: &'static str,
    dir: tempfile::TempDir,
    db: Db,
}

impl Target {
    fn new(name: &'static str) -> Target {
        let mut db = Db::default();
        for (code, version) in [("200", "v1"), ("500", "v1"), ("200", "v2")] {
            let l = labels(
                "http_requests_total",
                &[("service", "web"), ("code", code), ("version", version)],
            );
            for i in 0..60 {
                db.append(&l, i * 15_000, (i * i) as f64);
            }
        }
        let le = labels("http_request_duration_seconds_bucket", &[("le", "0.1")]);
        for i in 0..60 {
            db.append(&le, i * 15_000, i as f64);
        }
        Target {
            name,
            dir: tempfile::tempdir().unwrap(),
            db,
        }
    }

    fn run(&self, input: &[u8]) {
        let text = String::from_utf8_lossy(input);
        match self.name {
            "pipeline" => {
                let path = self.dir.path().join("pipeline.yaml");
                let vars = Variables::from_sets(BTreeMap::new());
                let _ = load_str(&text, &path, &vars);
            }
            "slo" => {
                let file = self.dir.path().join("slo.yaml");
                std::fs::write(&file, input).unwrap();
                let _ = Slo::load(&file, None);
                let keptn = fixture("tests/fixtures/slo/keptn-slo.yaml");
                let _ = Slo::load(&keptn, Some(&file));
            }
            _ => {
                if let Ok(expr) = parse(&text) {
                    let eval = Evaluator::new(&self.db);
                    let _ = eval.instant(&expr, 900_000);
                    let _ = eval.range(&expr, 0, 900_000, 60_000);
                }
            }
        }
    }
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = fixture(&format!("fuzz/corpus/{target}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Runs one input, keeping it on disk first so an abort leaves it behind.
fn try_one(target: &Target, input: &[u8], artifacts: &Path) -> Result<(), String> {
    std::fs::write(artifacts.join("last"), input).unwrap();
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.run(input)));
    let problem = match outcome {
        Err(_) => "panicked",
        Ok(()) if started.elapsed() > HANG => "hung",
        Ok(()) => return Ok(()),
    };
    let name = format!("{problem}-{:016x}", fnv(input));
    std::fs::write(artifacts.join(&name), input).unwrap();
    let message = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Err(format!(
        "{}: an input {problem} ({message}); saved as {}",
        target.name,
        artifacts.join(name).display()
    ))
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

struct Options {
    seconds: Option<u64>,
    seed: u64,
    replay: Option<PathBuf>,
    targets: Vec<&'static str>,
}

fn options() -> Options {
    let mut o = Options {
        seconds: None,
        seed: 0x5eed,
        replay: None,
        targets: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => o.seconds = args.next().and_then(|s| s.parse().ok()),
            "--seed" => o.seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(o.seed),
            "--replay" => o.replay = args.next().map(PathBuf::from),
            // What `cargo test` passes to every test binary.
            "--quiet" | "-q" | "--nocapture" | "--color" => {}
            name => o.targets.extend(TARGETS.iter().filter(|t| **t == name)),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.to_vec();
    }
    o
}

fn fuzz(name: &'static str, o: &Options) -> Result<usize, String> {
    let target = Target::new(name);
    let artifacts = fixture(&format!("fuzz/artifacts/{name}"));
    std::fs::create_dir_all(&artifacts).unwrap();
    if let Some(file) = &o.replay {
        try_one(&target, &std::fs::read(file).unwrap(), &artifacts)?;
        return Ok(1);
    }
    let seeds = corpus(name);
    for input in &seeds {
        try_one(&target, input, &artifacts)?;
    }
    let mut rng = Rng(o.seed | 1);
    let deadline = o.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut runs = seeds.len();
    let mut current = seeds[0].clone();
    loop {
        match deadline {
            Some(d) if Instant::now() >= d => break,
            None if runs >= seeds.len() + DEFAULT_MUTATIONS => break,
            _ => {}
        }
        // Mostly mutate a corpus file; sometimes keep mutating the last mutant.
        if rng.below(4) != 0 {
            current = seeds[rng.below(seeds.len())].clone();
        }
        current = mutate(&mut rng, &current, &seeds);
        try_one(&target, &current, &artifacts)?;
        runs += 1;
    }
    Ok(runs)
}

fn main() {
    let o = options();
    // A panic is caught and reported once, with the message the hook kept.
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
    }));
    let mut failed = false;
    for name in &o.targets {
        match fuzz(name, &o) {
            Ok(runs) => println!("fuzz {name}: {runs} inputs, no panic (seed {})", o.seed),
            Err(e) => {
                println!("fuzz {name}: FAILED: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
