//! TLS for `wss://` and `https://` targets (`--ca-file`): the rustls client configuration (on
//! `ring`, trusting only the given CA), and [`Stream`], the socket the connect thread and the
//! publisher speak over, plain or TLS. A subscribed TLS socket is handed to the receive loop as
//! its TCP socket plus the rustls connection ([`Stream::into_parts`]); the loop decrypts there
//! (`crate::rx`).

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How the generator reaches the server over TLS: the client configuration and the name the
/// server's certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsTarget({:?})", self.name)
    }
}

impl TlsTarget {
    /// A target whose certificate for `host` (`host:port` accepted) is signed by the CA in
    /// the PEM file `ca_file`. TLS 1.3 and 1.2, ALPN `http/1.1`.
    pub fn new(ca_file: &str, host: &str) -> Result<TlsTarget, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| format!("--ca-file {ca_file}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("--ca-file {ca_file}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("--ca-file {ca_file}: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("--ca-file {ca_file}: no CERTIFICATE in the file"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let bare = host
            .rsplit_once(':')
            .filter(|(_, port)| port.parse::<u16>().is_ok())
            .map_or(host, |(h, _)| h);
        let name = match bare.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(bare.to_string())
                .map_err(|e| format!("{bare:?} is not a TLS server name: {e}"))?,
        };
        Ok(TlsTarget {
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the TLS handshake over `tcp`.
    pub async fn connect(&self, tcp: TcpStream) -> Result<Stream, String> {
        let stream = TlsConnector::from(self.config.clone())
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// Opens `tcp` as plain or TLS, as `tls` says.
pub async fn wrap(tls: Option<&TlsTarget>, tcp: TcpStream) -> Result<Stream, String> {
    match tls {
        Some(target) => target.connect(tcp).await,
        None => Ok(Stream::Plain(tcp)),
    }
}

/// A connection to the server, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket and, for TLS, the connection state (with whatever plaintext it has
    /// decrypted but not handed out yet).
    pub fn into_parts(self) -> (TcpStream, Option<Box<ClientConnection>>) {
        match self {
            Stream::Plain(tcp) => (tcp, None),
            Stream::Tls(tls) => {
                let (tcp, conn) = tls.into_inner();
                (tcp, Some(Box::new(conn)))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
