//! A real PostgreSQL for journal tests. `.ci/run` starts one and exports its URL as
//! `GLIDEPATH_TEST_POSTGRES`; without it (a developer's `cargo test`), a throwaway server
//! is started here from Debian's `postgresql` (initdb/pg_ctl in /usr/lib/postgresql/*/bin),
//! in a temporary folder, on a free loopback port, as the `postgres` user when run as root.
//! Under CI=true a missing URL fails the test: nothing is skipped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A server, stopped when dropped (when this test started it).
pub struct Server {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    port: u16,
    /// Started with `fsync` on (benchmarks); tests run with it off.
    durable: bool,
}

/// The newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|d| d.join("pg_ctl").exists());
    dirs.sort();
    dirs.pop().unwrap_or_else(|| {
        panic!("PostgreSQL's server is not installed: apt-get install postgresql (or set GLIDEPATH_TEST_POSTGRES to a server's URL)")
    })
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL program, as `postgres` when this is root (the server refuses root).
fn run(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(program);
    let mut cmd = if root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Server {
    /// The server CI started, or a throwaway one.
    pub fn shared() -> Server {
        match std::env::var("GLIDEPATH_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => Server {
                url,
                dir: None,
                bin: PathBuf::new(),
                port: 0,
                durable: false,
            },
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "GLIDEPATH_TEST_POSTGRES is not set: .ci/run starts PostgreSQL and exports it"
                );
                Server::throwaway()
            }
        }
    }

    /// A server of this test's own (one it may stop and start again).
    pub fn throwaway() -> Server {
        let server = Server::initdb(None);
        server.start();
        server
    }

    /// A server of this test's own with TLS (`cert`/`key` PEM): `postgres` may connect
    /// without a password, every other role only over TLS with its password.
    pub fn throwaway_tls(cert: &str, key: &str) -> Server {
        let server = Server::initdb(Some((cert, key)));
        server.start();
        server
    }

    /// A server of this test's own that syncs every commit to disk, as a production server
    /// does (benches/journal.rs).
    pub fn throwaway_durable() -> Server {
        let mut server = Server::initdb(None);
        server.durable = true;
        server.start();
        server
    }

    /// The postmaster's process id, for a server this test started and that runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text =
            std::fs::read_to_string(self.dir.as_ref()?.path().join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    fn initdb(tls: Option<(&str, &str)>) -> Server {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("glidepath-pg")
            .tempdir()
            .unwrap();
        if root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                ok.success(),
                "cannot hand {} to postgres",
                dir.path().display()
            );
        }
        let data = dir.path().join("data");
        let out = run(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some((cert, key)) = tls {
            let conf = format!(
                "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n",
                dir.path().display()
            );
            std::fs::write(dir.path().join("server.crt"), cert).unwrap();
            std::fs::write(dir.path().join("server.key"), key).unwrap();
            let hba = "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\nhost all all ::1/128 reject\n";
            std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
            let mut c = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .unwrap();
            std::io::Write::write_all(&mut c, conf.as_bytes()).unwrap();
            if root() {
                let ok = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path())
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        let port = free_port();
        Server {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir: Some(dir),
            bin,
            port,
            durable: false,
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir
            .as_ref()
            .expect("a server this test started")
            .path()
            .join("data")
    }

    /// Starts the server this test made, waiting until it takes connections.
    pub fn start(&self) {
        let data = self.data();
        let dir = self
            .dir
            .as_ref()
            .unwrap()
            .path()
            .to_str()
            .unwrap()
            .to_owned();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {dir} -c fsync={}",
            self.port,
            if self.durable { "on" } else { "off" }
        );
        let log = format!("{dir}/server.log");
        let out = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server this test made (`fast`: connections are ended).
    pub fn stop(&self) {
        let data = self.data();
        let out = run(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new empty database on this server; its URL.
    pub fn database(&self, name: &str) -> String {
        let name = format!("{name}_{}", std::process::id());
        let admin = self.url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name};");
        let out = Command::new("psql")
            .args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-q"])
            .args(sql.split_inclusive(';').flat_map(|s| ["-c", s]))
            .output()
            .expect("psql (postgresql-client) is installed");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (base, _) = admin.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }

    /// Runs SQL on a database (a URL from [`Server::database`]); its output, unaligned.
    pub fn psql(url: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .output()
            .expect("psql (postgresql-client) is installed");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.dir.is_some() {
            let data = self.data();
            let _ = run(
                &self.bin,
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap_or(""),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
        }
    }
}
