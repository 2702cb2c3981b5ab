//! The SMTP client: lettre's connection, on sockets opened here with `TCP_NODELAY` set, kept
//! open between messages in a small pool shared by the workers of a process.
//!
//! Why not lettre's own transport: it does not set `TCP_NODELAY`, and it writes a message's
//! end-of-data line (`CRLF.CRLF`) as a write of its own after the body. Nagle's algorithm then
//! holds those five bytes until the server acknowledges the body, which a Linux server delays
//! by 40 ms: every message would cost 40 ms of waiting on every connection. Opening the socket
//! here and handing it to lettre's connection keeps lettre's SMTP, TLS and authentication and
//! removes the wait.
//!
//! The URL is read as lettre reads it: `smtp://host[:port]` in the clear (a relay on the same
//! host or network), `smtp://…?tls=required` or `?tls=opportunistic` with STARTTLS, `smtps://`
//! with TLS from the first byte; `user:password@` authenticates; a path names the client in
//! EHLO.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::transport::SendError;

/// An idle connection older than this is tested with `NOOP` before it carries a message:
/// servers close connections that sit idle, and a message must not be the first to find out.
const TEST_IDLE_AFTER: Duration = Duration::from_secs(2);

/// An idle connection older than this is closed rather than reused.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// How many idle connections are kept; more are closed after their message.
const MAX_IDLE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    None,
    Starttls { required: bool },
    Wrapper,
}

/// Where and how to reach the mail server.
#[derive(Clone)]
struct Server {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
}

/// The SMTP client of a process: its server and its idle connections.
pub struct SmtpClient {
    server: Server,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("SmtpClient")
            .field("host", &self.server.host)
            .field("port", &self.server.port)
            .field("tls", &self.server.tls)
            .finish_non_exhaustive()
    }
}

impl SmtpClient {
    /// Reads an `EDL_SMTP_URL`; the error names what is wrong, never the password.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("it names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls_param = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (tls, default_port) = match (parsed.scheme(), tls_param.as_deref()) {
            ("smtp", None) => (Tls::None, 25),
            ("smtp", Some("required")) => (Tls::Starttls { required: true }, 587),
            ("smtp", Some("opportunistic")) => (Tls::Starttls { required: false }, 587),
            ("smtps", _) => (Tls::Wrapper, 465),
            (scheme, tls) => {
                return Err(format!(
                    "the scheme {scheme:?} with tls={} is not one of smtp://, smtp://…?tls=required, smtp://…?tls=opportunistic, smtps://",
                    tls.unwrap_or("(none)")
                ))
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = parsed
            .password()
            .map(|password| Credentials::new(decode(parsed.username()), decode(password)));
        let hello = match parsed.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        Ok(Self {
            server: Server {
                host,
                port: parsed.port().unwrap_or(default_port),
                tls,
                credentials,
                hello,
            },
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends one finished message. Not bounded in time: the caller puts its deadline around it,
    /// and a connection dropped at the deadline is simply closed.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let result = match self.take_idle().await {
            Some(mut conn) => match exchange(&mut conn, envelope, message).await {
                // The server closed the connection while it sat idle, and said nothing about
                // this message: it was never offered, so it goes on a new connection.
                Err(Failure::BeforeMail(error)) if !has_reply(&error) => {
                    let mut conn = self.connect().await?;
                    let result = exchange(&mut conn, envelope, message).await;
                    result.map(|()| conn)
                }
                result => result.map(|()| conn),
            },
            None => {
                let mut conn = self.connect().await?;
                let result = exchange(&mut conn, envelope, message).await;
                result.map(|()| conn)
            }
        };
        match result {
            Ok(conn) => {
                self.put_back(conn);
                Ok(())
            }
            // The connection is dropped (closed) with its error: after a refusal the server
            // may expect a reset, after a network error it is gone.
            Err(Failure::BeforeMail(error) | Failure::Exchange(error)) => Err(classify(&error)),
        }
    }

    /// An open connection from the pool, tested first if it sat idle for a while.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.pop()?
            };
            let age = since.elapsed();
            if conn.has_broken() || age > IDLE_LIMIT {
                continue;
            }
            if age < TEST_IDLE_AFTER || conn.test_connected().await {
                return Some(conn);
            }
        }
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE && !conn.has_broken() {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let server = &self.server;
        let unreachable = |what: &str, e: &dyn fmt::Display| {
            SendError::Unreachable(format!("{what} {}:{}: {e}", server.host, server.port))
        };
        let tcp = TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(|e| unreachable("cannot connect to", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| unreachable("cannot set TCP_NODELAY for", &e))?;
        let stream: Box<dyn AsyncTokioStream> = match server.tls {
            Tls::Wrapper => Box::new(
                TlsTcp::connect(&server.host, tcp)
                    .await
                    .map_err(|e| unreachable("TLS failed with", &e))?,
            ),
            Tls::None | Tls::Starttls { .. } => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &server.hello)
            .await
            .map_err(|e| classify(&e))?;
        if let Tls::Starttls { required } = server.tls {
            if conn.can_starttls() {
                let parameters =
                    TlsParameters::new(server.host.clone()).map_err(|e| classify(&e))?;
                conn.starttls(parameters, &server.hello)
                    .await
                    .map_err(|e| classify(&e))?;
            } else if required {
                return Err(SendError::Unreachable(format!(
                    "{}:{} does not offer STARTTLS, which EDL_SMTP_URL requires",
                    server.host, server.port
                )));
            }
        }
        if let Some(credentials) = &server.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(conn)
    }
}

/// Where an exchange failed: at its first command, before the server saw anything of the
/// message, or later.
enum Failure {
    BeforeMail(lettre::transport::smtp::Error),
    Exchange(lettre::transport::smtp::Error),
}

fn has_reply(error: &lettre::transport::smtp::Error) -> bool {
    error.is_permanent() || error.is_transient()
}

/// One message over an open connection: MAIL, RCPT for each recipient, DATA.
async fn exchange(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), Failure> {
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii && conn.server_info().supports_feature(Extension::SmtpUtfEight) {
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(Failure::BeforeMail)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(Failure::Exchange)?;
    }
    conn.command(Data).await.map_err(Failure::Exchange)?;
    conn.message(message).await.map_err(Failure::Exchange)?;
    Ok(())
}

/// A 5xx is permanent, a 4xx for this message transient, anything else (the connection, TLS,
/// the network) means the server cannot be reached.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    let reason = error.to_string();
    if error.is_permanent() {
        SendError::Permanent(reason)
    } else if error.is_transient() {
        SendError::Transient(reason)
    } else {
        SendError::Unreachable(reason)
    }
}

/// TLS from the first byte (`smtps://`), on a socket opened here.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl TlsTcp {
    async fn connect(host: &str, tcp: TcpStream) -> std::io::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(std::io::Error::other)?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        Ok(Self(stream))
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_lettre_reads_them() {
        let plain = SmtpClient::from_url("smtp://127.0.0.1:2525").expect("plain");
        assert_eq!(
            (
                plain.server.host.as_str(),
                plain.server.port,
                plain.server.tls
            ),
            ("127.0.0.1", 2525, Tls::None)
        );
        assert!(plain.server.credentials.is_none());
        let starttls =
            SmtpClient::from_url("smtp://relay.example.org?tls=required").expect("starttls");
        assert_eq!(
            (starttls.server.port, starttls.server.tls),
            (587, Tls::Starttls { required: true })
        );
        let wrapper = SmtpClient::from_url("smtps://u%40x:p%2Bw@mail.example.org/edl.example.org")
            .expect("smtps");
        assert_eq!(
            (wrapper.server.port, wrapper.server.tls),
            (465, Tls::Wrapper)
        );
        assert!(wrapper.server.credentials.is_some());
        assert_eq!(
            wrapper.server.hello,
            ClientId::Domain("edl.example.org".into())
        );
        assert!(!format!("{wrapper:?}").contains("p%2Bw"));
        for bad in [
            "http://example.org",
            "smtp://example.org?tls=maybe",
            "nonsense",
        ] {
            assert!(SmtpClient::from_url(bad).is_err(), "{bad}");
        }
    }
}
