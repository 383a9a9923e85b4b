//! Where requests go and how they get there: origins parsed once, TCP (with TLS by rustls
//! when the URL says `https`), HTTP/1.1 keep-alive or HTTP/2 (ALPN over TLS, prior
//! knowledge over cleartext), and one request sent with its failure named by kind.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Uri};

/// The HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2: negotiated by ALPN over TLS, prior knowledge (h2c) over cleartext.
    Http2,
}

/// How server certificates are checked.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Trust these PEM certificates too (a private CA, a self-signed test server).
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate (a quick check against a server whose certificate is wrong).
    pub insecure: bool,
}

/// One kind of request, as the plan lists it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// `http://` or `https://` URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// Share of the traffic, relative to the others' weights.
    pub weight: u32,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: Bytes::new(),
            weight: 1,
        }
    }
}

/// A server to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// A request ready to send many times.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub origin: usize,
    pub method: Method,
    /// Origin form (`/path?q`) for HTTP/1.1, absolute for HTTP/2.
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Parses every request once; invalid URLs and headers are refused before anything is sent.
pub(crate) fn prepare(
    requests: &[Request],
    protocol: Protocol,
) -> Result<(Vec<Origin>, Vec<Prepared>), String> {
    let mut origins: Vec<Origin> = Vec::new();
    let mut out = Vec::new();
    for r in requests {
        let uri: Uri = r
            .url
            .parse()
            .map_err(|e| format!("{}: not a URL ({e})", r.url))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(format!("{}: `{other}` is not http or https", r.url)),
            None => return Err(format!("{}: the URL needs http:// or https://", r.url)),
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| format!("{}: no host", r.url))?
            .clone();
        if let Some((_, port)) = authority.as_str().rsplit_once(':')
            && !port.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err(format!("{}: bad port `{port}`", r.url));
        }
        let origin = Origin {
            tls,
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        };
        let index = match origins.iter().position(|o| *o == origin) {
            Some(i) => i,
            None => {
                origins.push(origin);
                origins.len() - 1
            }
        };
        let mut headers = HeaderMap::new();
        if protocol == Protocol::Http1 {
            let host = hyper::header::HeaderValue::from_str(authority.as_str())
                .map_err(|e| format!("{}: {e}", r.url))?;
            headers.insert(hyper::header::HOST, host);
        }
        for (k, v) in &r.headers {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("`{k}` is not a header name"))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|_| format!("the value of header `{k}` is not valid"))?;
            // The operator's Host replaces the URL's (a virtual host tested by address).
            if name == hyper::header::HOST {
                headers.insert(name, value);
            } else {
                headers.append(name, value);
            }
        }
        let uri = match protocol {
            Protocol::Http2 => uri,
            Protocol::Http1 => uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .parse()
                .map_err(|e| format!("{}: {e}", r.url))?,
        };
        out.push(Prepared {
            origin: index,
            method: r.method.clone(),
            uri,
            headers,
            body: r.body.clone(),
        });
    }
    if out.is_empty() {
        return Err("no requests to send".into());
    }
    Ok((origins, out))
}

/// An open connection.
pub(crate) enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }
}

/// Builds the client TLS settings once per test.
pub(crate) fn tls_config(
    options: &TlsOptions,
    protocol: Protocol,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = crate::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let mut config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = &options.ca_file {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![match protocol {
        Protocol::Http1 => b"http/1.1".to_vec(),
        Protocol::Http2 => b"h2".to_vec(),
    }];
    Ok(Arc::new(config))
}

/// `--insecure`: every certificate is accepted; signatures are still checked so the
/// handshake itself is real.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Opens a connection; the error is its kind (`connect`, `tls`).
pub(crate) async fn connect(
    origin: &Origin,
    protocol: Protocol,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Sender, &'static str> {
    let stream = tokio::net::TcpStream::connect((origin.host.as_str(), origin.port))
        .await
        .map_err(|_| "connect")?;
    let _ = stream.set_nodelay(true);
    match (origin.tls, tls) {
        (true, Some(config)) => {
            let name =
                rustls::pki_types::ServerName::try_from(origin.host.clone()).map_err(|_| "tls")?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await
                .map_err(|_| "tls")?;
            // A server that does not offer h2 by ALPN cannot be spoken to in HTTP/2.
            if protocol == Protocol::Http2 && stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err("tls");
            }
            handshake(hyper_util::rt::TokioIo::new(stream), protocol).await
        }
        (true, None) => Err("tls"),
        (false, _) => handshake(hyper_util::rt::TokioIo::new(stream), protocol).await,
    }
}

async fn handshake<T>(io: T, protocol: Protocol) -> Result<Sender, &'static str>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    match protocol {
        Protocol::Http1 => {
            let (sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|_| "connect")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H1(sender))
        }
        Protocol::Http2 => {
            let (sender, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .map_err(|_| "connect")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H2(sender))
        }
    }
}

/// Sends `req` on `sender` and reads the whole answer: the status, or the error's kind.
/// `closed` means the connection was gone before the request went out (the server closed
/// an idle keep-alive connection), so sending again on a new one is safe.
pub(crate) async fn send(
    sender: &mut Sender,
    req: &Prepared,
) -> Result<hyper::StatusCode, &'static str> {
    let mut r = hyper::Request::new(Full::new(req.body.clone()));
    *r.method_mut() = req.method.clone();
    *r.uri_mut() = req.uri.clone();
    *r.headers_mut() = req.headers.clone();
    let resp = match sender {
        Sender::H1(s) => {
            s.ready().await.map_err(|_| "closed")?;
            s.send_request(r).await
        }
        Sender::H2(s) => {
            s.ready().await.map_err(|_| "closed")?;
            s.send_request(r).await
        }
    }
    .map_err(|_| "io")?;
    let status = resp.status();
    resp.into_body().collect().await.map_err(|_| "io")?;
    Ok(status)
}
