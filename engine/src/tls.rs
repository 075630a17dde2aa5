//! TLS on the client port (`--tls-cert-file`, `--tls-key-file`): loading the certificate chain
//! and key, the rustls server configuration every shard shares, the certificate store that
//! SIGHUP reloads, and [`TlsTransport`], the [`Transport`] that puts rustls's sans-IO
//! `ServerConnection` between a connection's socket and the core.
//!
//! The connection task stays the one in `conn_task`: it reads ciphertext into the shard's
//! scratch buffer and hands it here; rustls decrypts it and the plaintext goes to the core
//! straight from rustls's buffer (no copy of ours). The core's coalesced output is written
//! into rustls, which encrypts it into records that go to the socket; the next output is taken
//! only once those records are sent, so backpressure is what it is without TLS. A plain
//! connection never touches this file.

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_lite::AsyncWrite;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use ringcast_core::limits::{TLS_BUFFER_BYTES_MAX, TLS_HANDSHAKE_TIMEOUT_MS};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};
use tracing::debug;

use crate::conn_task::{Dropped, Transport};
use crate::shard_ctx::ShardCtx;

/// The node's TLS setup: the configuration each accepted connection starts from, and the
/// certificate store behind it.
pub struct TlsSetup {
    /// What every shard builds its connections' `ServerConnection` from.
    pub config: Arc<ServerConfig>,
    store: Arc<CertStore>,
}

impl TlsSetup {
    /// Reads the certificate chain and key and builds the configuration: TLS 1.3 and 1.2 on
    /// `ring`, ALPN `http/1.1`, no client certificates. Every failure is one line naming the
    /// file at fault.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsSetup, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = certified_key(cert_path, key_path, &provider)?;
        let store = Arc::new(CertStore {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(key)),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("cannot configure TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(store.clone());
        // WebSocket upgrades and the REST API are HTTP/1.1; a client that offers only h2 is
        // refused in the handshake rather than misunderstood after it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSetup {
            config: Arc::new(config),
            store,
        })
    }

    /// Reads the files again (SIGHUP). On success new handshakes use the new certificate and
    /// open connections keep theirs; on failure the current one stays and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        self.store.reload()
    }

    /// The certificate file, for log lines.
    pub fn cert_path(&self) -> &Path {
        &self.store.cert_path
    }
}

/// The certificate and key that handshakes use, swapped whole by a reload. A read lock per
/// handshake: a reload is rare and a handshake costs far more than the lock.
#[derive(Debug)]
struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    fn reload(&self) -> Result<(), String> {
        let key = certified_key(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // One certificate for every name: SNI is not used to choose.
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The chain of `cert_path` and the key of `key_path`, checked to belong together.
fn certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let cert_pem = std::fs::read(cert_path)
        .map_err(|e| format!("cannot read --tls-cert-file {}: {e}", cert_path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "--tls-cert-file {}: not a PEM certificate chain: {e}",
                cert_path.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert-file {}: no CERTIFICATE block in the file",
            cert_path.display()
        ));
    }
    let key_pem = std::fs::read(key_path)
        .map_err(|e| format!("cannot read --tls-key-file {}: {e}", key_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "--tls-key-file {}: no PEM private key (PKCS#8, RSA or SEC1): {e}",
            key_path.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "--tls-key-file {} is not the key of the certificate in --tls-cert-file {}",
            key_path.display(),
            cert_path.display()
        ),
        other => format!(
            "--tls-cert-file {} / --tls-key-file {}: {other}",
            cert_path.display(),
            key_path.display()
        ),
    })
}

/// One connection's TLS state, as the connection task's [`Transport`].
pub struct TlsTransport {
    conn: ServerConnection,
    /// Output of the core that rustls did not take yet (it holds at most
    /// [`TLS_BUFFER_BYTES_MAX`]); only a single output larger than that leaves one.
    tail: Option<Bytes>,
    /// Until the handshake ends: when it must have ended ([`TLS_HANDSHAKE_TIMEOUT_MS`]).
    deadline: Option<Timer>,
}

impl TlsTransport {
    /// A server connection for a socket just accepted; its handshake deadline starts now.
    pub fn new(config: &Arc<ServerConfig>) -> Result<TlsTransport, rustls::Error> {
        let mut conn = ServerConnection::new(config.clone())?;
        conn.set_buffer_limit(Some(TLS_BUFFER_BYTES_MAX));
        Ok(TlsTransport {
            conn,
            tail: None,
            deadline: Some(Timer::new(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS))),
        })
    }

    /// One write step: encrypted records to the socket first, then the plaintext tail into
    /// rustls.
    fn write_step(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Dropped>> {
        if self.conn.wants_write() {
            return match self.conn.write_tls(&mut SocketWriter { stream, cx }) {
                Ok(0) => Poll::Ready(Err(Dropped)),
                Ok(_) => Poll::Ready(Ok(())),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Poll::Pending,
                Err(_) => Poll::Ready(Err(Dropped)),
            };
        }
        if let Some(tail) = self.tail.as_mut() {
            // rustls's records are all sent, so its buffer has room for part of the tail.
            let taken = self.conn.writer().write(&tail[..]).map_err(|_| Dropped)?;
            if taken == 0 {
                // Only before the handshake ended, with its buffer full of plaintext: the core
                // never writes that early, and waiting here would wait for nothing.
                return Poll::Ready(Err(Dropped));
            }
            tail.advance(taken);
            if tail.is_empty() {
                self.tail = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Hands every plaintext byte rustls holds to the core, straight from rustls's buffer.
    fn deliver(&mut self, ctx: &ShardCtx, key: u32) {
        let now_ms = ctx.now_ms();
        let mut reader = self.conn.reader();
        // `fill_buf` fails with WouldBlock once empty (or at the peer's close): both end it.
        while let Ok(chunk) = reader.fill_buf() {
            if chunk.is_empty() {
                break;
            }
            let taken = chunk.len();
            ctx.core.borrow_mut().handle_bytes(key, chunk, now_ms);
            reader.consume(taken);
        }
    }

    /// A TLS protocol failure: counted, what rustls queued (the alert, and the records before
    /// it, such as a ServerHello) is offered to the socket as far as it takes it now (never
    /// waited for), and the connection is dropped.
    fn fail(
        &mut self,
        ctx: &ShardCtx,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
        err: &dyn std::fmt::Display,
    ) -> Result<(), Dropped> {
        let during_handshake = self.conn.is_handshaking();
        debug!(%err, during_handshake, "TLS connection dropped");
        ctx.core.borrow_mut().count_tls_failure(during_handshake);
        while self.conn.wants_write() {
            // One record per call; a full socket or an error ends the attempt.
            match self.conn.write_tls(&mut SocketWriter { stream, cx }) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        Err(Dropped)
    }
}

impl Transport for TlsTransport {
    fn has_pending(&self) -> bool {
        self.conn.wants_write() || self.tail.is_some()
    }

    fn poll_flush(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Dropped>> {
        self.write_step(stream, cx)
    }

    fn send(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
        out: &[u8],
    ) -> Result<(), Dropped> {
        let taken = self.conn.writer().write(out).map_err(|_| Dropped)?;
        if taken < out.len() {
            self.tail = Some(Bytes::copy_from_slice(&out[taken..]));
        }
        // Send as far as the socket takes it now, so that what is left pending means what it
        // means without TLS: the socket is full.
        while self.has_pending() {
            match self.write_step(stream, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(dropped)) => return Err(dropped),
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &ShardCtx,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
        key: u32,
        data: &[u8],
    ) -> Result<(), Dropped> {
        // rustls takes a few KiB per `read_tls`; every record it completes is processed and its
        // plaintext delivered before the next, so nothing of the shared scratch buffer is kept.
        let mut rest = data;
        while !rest.is_empty() {
            match self.conn.read_tls(&mut rest) {
                // After the peer's close_notify rustls reads nothing more.
                Ok(0) => return Err(Dropped),
                Ok(_) => {}
                // A handshake message over rustls's 64 KiB bound.
                Err(err) => return self.fail(ctx, stream, cx, &err),
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(err) => return self.fail(ctx, stream, cx, &err),
            };
            if state.plaintext_bytes_to_read() > 0 {
                self.deliver(ctx, key);
            }
            if state.peer_has_closed() {
                return Err(Dropped);
            }
        }
        if !self.conn.is_handshaking() {
            self.deadline = None;
        }
        Ok(())
    }

    fn poll_expired(&mut self, ctx: &ShardCtx, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline.as_mut() else {
            return false;
        };
        if Pin::new(deadline).poll(cx).is_pending() {
            return false;
        }
        self.deadline = None;
        if !self.conn.is_handshaking() {
            return false;
        }
        debug!("TLS handshake not finished in time: dropped");
        ctx.core.borrow_mut().count_tls_failure(true);
        true
    }

    fn finish(&mut self) {
        self.conn.send_close_notify();
    }
}

/// The socket as the `std::io::Write` rustls writes records to: one non-blocking send, a full
/// socket being `WouldBlock` (the task is woken when it has room).
struct SocketWriter<'a, 'b> {
    stream: &'a mut TcpStream,
    cx: &'a mut Context<'b>,
}

impl Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match Pin::new(&mut *self.stream).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
