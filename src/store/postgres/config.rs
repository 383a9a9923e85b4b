//! A `postgres://` journal URL: host, database, user, TLS and where the password comes from.
//!
//! The password is read from, in order: the URL (accepted, never shown), `password_file=PATH`,
//! `PGPASSWORD`, then a passfile (`passfile=PATH`, `PGPASSFILE` or `~/.pgpass`, libpq's
//! format). TLS: `sslmode=verify-full` checks the certificate against the system's roots, or
//! against `sslrootcert=FILE` only, and the host name; `sslmode=disable` is plain TCP. The
//! default is `verify-full`, except on loopback and Unix sockets, where it is `disable`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::super::StoreError;

/// The query parameters a journal URL may carry.
const KNOWN: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "password_file",
    "passfile",
    "application_name",
    "connect_timeout",
    "host",
    "port",
    "user",
    "dbname",
];

/// A PostgreSQL journal, ready to connect to.
pub struct Target {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn bad(url: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Config(format!(
        "journal URL {}: {what}",
        crate::redact::url_credentials(url)
    ))
}

impl Target {
    /// Parses a journal URL and reads its password and TLS roots.
    pub fn parse(url: &str) -> Result<Target, StoreError> {
        let parsed = url::Url::parse(url).map_err(|e| bad(url, e))?;
        let mut params: std::collections::BTreeMap<String, String> = Default::default();
        for (k, v) in parsed.query_pairs() {
            if !KNOWN.contains(&k.as_ref()) {
                return Err(bad(
                    url,
                    format!("unknown parameter `{k}`; known: {}", KNOWN.join(", ")),
                ));
            }
            params.insert(k.into_owned(), v.into_owned());
        }
        let decode = |s: &str| {
            percent_decode(s).map_err(|_| bad(url, "the user or password is not valid UTF-8"))
        };
        let user = match (params.get("user"), parsed.username()) {
            (Some(u), _) => u.clone(),
            (None, "") => std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".into()),
            (None, u) => decode(u)?,
        };
        let host = match params.get("host") {
            Some(h) => h.clone(),
            None => parsed
                .host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into()),
        };
        let port = match params.get("port") {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad(url, format!("port `{p}` is not a port number")))?,
            None => parsed.port().unwrap_or(5432),
        };
        let dbname = match params.get("dbname") {
            Some(d) => d.clone(),
            None => match decode(parsed.path().trim_start_matches('/'))? {
                d if d.is_empty() => user.clone(),
                d => d,
            },
        };
        let mut config = tokio_postgres::Config::new();
        config
            .host(&host)
            .port(port)
            .user(&user)
            .dbname(&dbname)
            .application_name(params.get("application_name").map_or("glidepath", |s| s));
        let timeout = match params.get("connect_timeout") {
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|t| (1..=3600).contains(t))
                .ok_or_else(|| bad(url, format!("connect_timeout `{t}` is not 1..3600 s")))?,
            None => 10,
        };
        config.connect_timeout(Duration::from_secs(timeout));
        let password = match parsed.password() {
            Some(p) => Some(decode(p)?),
            None => password(&params, &host, port, &dbname, &user).map_err(|e| bad(url, e))?,
        };
        if let Some(p) = password {
            config.password(p);
        }
        let tls = tls(&params, &host).map_err(|e| bad(url, e))?;
        Ok(Target {
            config,
            tls,
            shown: shown(&parsed),
        })
    }

    /// The URL as given, without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// The URL with its password, if any, as `***`: the user stays, to say who connects.
fn shown(parsed: &url::Url) -> String {
    let mut u = parsed.clone();
    if u.password().is_some() && u.set_password(Some("***")).is_err() {
        return crate::redact::url_credentials(parsed.as_str()).into_owned();
    }
    u.to_string()
}

fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    std::str::from_utf8(&bytes).map(str::to_owned)
}

/// `password_file`, `PGPASSWORD`, then the passfile.
fn password(
    params: &std::collections::BTreeMap<String, String>,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Result<Option<String>, String> {
    if let Some(file) = params.get("password_file") {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("password_file {file}: {e}; write the password alone in it"))?;
        let p = text.trim_end_matches(['\n', '\r']);
        if p.is_empty() {
            return Err(format!("password_file {file} is empty"));
        }
        return Ok(Some(p.to_owned()));
    }
    if let Ok(p) = std::env::var("PGPASSWORD")
        && !p.is_empty()
    {
        return Ok(Some(p));
    }
    let file = params
        .get("passfile")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")));
    let Some(file) = file else {
        return Ok(None);
    };
    match std::fs::read_to_string(&file) {
        Ok(text) => Ok(passfile_lookup(&text, host, port, dbname, user)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !params.contains_key("passfile") => {
            Ok(None)
        }
        Err(e) => Err(format!("passfile {}: {e}", file.display())),
    }
}

/// The first `host:port:database:user:password` line of a passfile that matches (`*`
/// matches anything; `\:` and `\\` are a colon and a backslash).
pub(super) fn passfile_lookup(
    text: &str,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split_escaped(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w);
            matches.then(|| fields[4].clone())
        })
}

fn split_escaped(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), fields.last_mut()) {
                    last.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

fn loopback(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('/')
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The TLS settings `sslmode` and `sslrootcert` ask for; None for plain TCP.
fn tls(
    params: &std::collections::BTreeMap<String, String>,
    host: &str,
) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    let default = if loopback(host) {
        "disable"
    } else {
        "verify-full"
    };
    match params.get("sslmode").map_or(default, String::as_str) {
        "disable" => Ok(None),
        "verify-full" => {
            let mut roots = rustls::RootCertStore::empty();
            match params.get("sslrootcert").map(String::as_str) {
                None | Some("system") => {
                    for cert in rustls_native_certs::load_native_certs().certs {
                        let _ = roots.add(cert);
                    }
                }
                Some(file) => {
                    use rustls::pki_types::CertificateDer;
                    use rustls::pki_types::pem::PemObject;
                    let certs = CertificateDer::pem_file_iter(file)
                        .map_err(|e| format!("sslrootcert {file}: {e}"))?;
                    for cert in certs {
                        let cert = cert.map_err(|e| format!("sslrootcert {file}: {e}"))?;
                        roots
                            .add(cert)
                            .map_err(|e| format!("sslrootcert {file}: {e}"))?;
                    }
                }
            }
            if roots.is_empty() {
                return Err(
                    "no trusted root certificates: name a CA file with sslrootcert=FILE".into(),
                );
            }
            let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Some(Arc::new(config)))
        }
        other => Err(format!(
            "sslmode={other} is not supported: use verify-full (the certificate and host name are checked) or disable"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passfile_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:db:ann:no\n*:5432:jour\\:nal:ann:s\\:cret\n";
        assert_eq!(
            passfile_lookup(text, "db.example", 5432, "jour:nal", "ann").as_deref(),
            Some("s:cret")
        );
        assert_eq!(
            passfile_lookup(text, "db.example", 5433, "jour:nal", "ann"),
            None
        );
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let t = Target::parse("postgres://ann:hunter2@127.0.0.1:5432/journal").unwrap();
        assert_eq!(t.shown(), "postgres://ann:***@127.0.0.1:5432/journal");
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(t.config.get_dbname(), Some("journal"));
        assert!(t.tls.is_none(), "loopback defaults to plain TCP");
    }

    #[test]
    fn a_remote_host_gets_verified_tls_and_bad_parameters_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let url = format!("postgres://ann@db.example/j?password_file={}", pw.display());
        let t = Target::parse(&url).unwrap();
        assert!(t.tls.is_some());
        assert_eq!(t.config.get_password(), Some(&b"s3cret"[..]));
        let e = Target::parse("postgres://ann:pw@db.example/j?sslmode=require")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=require is not supported"), "{e}");
        assert!(!e.contains(":pw@"), "{e}");
        let e = Target::parse("postgres://db.example/j?sslcert=x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown parameter `sslcert`"), "{e}");
    }
}
