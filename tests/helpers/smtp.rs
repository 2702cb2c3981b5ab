//! A small SMTP server on loopback that the service talks to over real TCP. It speaks enough
//! of RFC 5321 for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps what it accepts,
//! can be stopped and restarted on the same port, and can answer with chosen error replies.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The bytes as they crossed the wire.
    pub data: Vec<u8>,
    /// The message as its recipient reads it: for a PGP/MIME encrypted message, the decrypted
    /// MIME entity (with its protected headers), opened with the recipient's test key;
    /// otherwise the same as `data`.
    pub opened: Vec<u8>,
    /// Whether it arrived PGP/MIME encrypted.
    pub encrypted: bool,
}

impl Received {
    pub fn new(mail_from: String, rcpt_to: Vec<String>, data: Vec<u8>) -> Self {
        // Encrypted is what crossed the wire, whether or not this test holds the key to open
        // it: one it cannot open stays as it came, and nothing inside it can be read.
        let encrypted =
            mailparse::parse_mail(&data).is_ok_and(|m| m.ctype.mimetype == "multipart/encrypted");
        let opened = rcpt_to
            .first()
            .and_then(|to| open(&data, to))
            .unwrap_or_else(|| data.clone());
        Self {
            encrypted,
            mail_from,
            rcpt_to,
            data,
            opened,
        }
    }

    /// The message as its recipient reads it (see `opened`).
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.opened).expect("the server received a parseable message")
    }

    /// The message as it crossed the wire.
    pub fn wire(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.data).expect("the server received a parseable message")
    }

    /// A header as the recipient reads it: inside an encrypted message, the protected one.
    pub fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }

    /// A header as it crossed the wire.
    pub fn wire_header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.wire().headers.get_first_value(name)
    }

    /// Everything of the message that crossed the wire readable: headers and every part
    /// decoded from its transfer encoding, encrypted parts as they are (armored).
    pub fn wire_decoded(&self) -> String {
        let mut out = String::new();
        walk_decoded(&self.wire(), &mut out);
        out
    }

    /// The whole message as a reader would see it: every header decoded, and every part
    /// (text, HTML, attachments) decoded from its transfer encoding. A test that asks whether a
    /// message carries something searches this, never the raw bytes, where base64 or
    /// quoted-printable would hide it.
    pub fn decoded(&self) -> String {
        let mut out = String::new();
        walk_decoded(&self.parsed(), &mut out);
        out
    }

    /// The decoded attachments: (file name, bytes). The list's signature is not one.
    pub fn attachments(&self) -> Vec<(String, Vec<u8>)> {
        fn walk(part: &mailparse::ParsedMail<'_>, out: &mut Vec<(String, Vec<u8>)>) {
            if part.subparts.is_empty() && part.ctype.mimetype != "application/pgp-signature" {
                if let Some(name) = part.get_content_disposition().params.get("filename") {
                    out.push((name.clone(), part.get_body_raw().unwrap_or_default()));
                }
            }
            for sub in &part.subparts {
                walk(sub, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.parsed(), &mut out);
        out
    }
}

#[derive(Default)]
struct Behaviour {
    received: Vec<Received>,
    /// Replies to give at the end of DATA, one per message, before accepting again.
    data_replies: VecDeque<String>,
    /// A reply for every DATA while set (e.g. a server that always defers).
    data_reply_always: Option<String>,
    /// Recipients refused at RCPT with this reply.
    refused_recipients: Vec<(String, String)>,
    /// Where new sessions go silent, if anywhere.
    silence: Option<Silence>,
    /// How many sessions went silent so far.
    stalled: usize,
    /// How many connections were accepted so far.
    sessions: usize,
    /// Hang up, without a word, after each message taken.
    hang_up_after_each: bool,
    /// Once this many messages are taken, never answer the end of DATA again.
    stall_data_after: Option<usize>,
}

/// Where a stalled server stops answering. A silent session keeps its connection open,
/// saying nothing, until the client gives up and closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// It accepts the connection and never greets.
    Greeting,
    /// It reads the whole message and never answers the end of DATA (nor keeps the message).
    EndOfData,
}

pub struct SmtpServer {
    port: u16,
    state: Arc<Mutex<Behaviour>>,
    tasks: Option<JoinSet<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP server");
        let port = listener.local_addr().expect("address").port();
        let mut server = Self {
            port,
            state: Arc::default(),
            tasks: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let state = self.state.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let state = state.clone();
                connections.spawn(session(stream, state));
            }
        });
        self.tasks = Some(tasks);
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Closes the listening socket and every open connection: the server is gone.
    pub async fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the SMTP port");
        self.serve(listener);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("state").received.clone()
    }

    /// The next messages get these replies at the end of DATA, in order (e.g. "451 4.3.0 busy").
    pub fn reply_to_next_data(&self, replies: &[&str]) {
        let mut state = self.state.lock().expect("state");
        state
            .data_replies
            .extend(replies.iter().map(|r| (*r).to_owned()));
    }

    pub fn reply_to_every_data(&self, reply: Option<&str>) {
        self.state.lock().expect("state").data_reply_always = reply.map(str::to_owned);
    }

    /// How many sessions have gone silent (and so how many exchanges a client is waiting on).
    pub fn stalled_sessions(&self) -> usize {
        self.state.lock().expect("state").stalled
    }

    /// How many connections the server has accepted.
    pub fn sessions(&self) -> usize {
        self.state.lock().expect("state").sessions
    }

    /// Makes the server close each connection, without a word, once it has taken a message:
    /// a client that keeps connections open finds this one closed when it comes back.
    pub fn hang_up_after_each_message(&self, on: bool) {
        self.state.lock().expect("state").hang_up_after_each = on;
    }

    /// Makes new sessions go silent at `at`, or answer normally again with `None`.
    pub fn go_silent(&self, at: Option<Silence>) {
        self.state.lock().expect("state").silence = at;
    }

    /// Takes `n` more messages normally, then reads every later message whole and never
    /// answers it, on open connections and new ones alike; `None` answers normally again.
    pub fn stall_data_after(&self, n: Option<usize>) {
        let mut state = self.state.lock().expect("state");
        state.stall_data_after = n.map(|n| state.received.len() + n);
    }

    pub fn refuse_recipient(&self, address: &str, reply: &str) {
        let mut state = self.state.lock().expect("state");
        state
            .refused_recipients
            .push((address.to_ascii_lowercase(), reply.to_owned()));
    }
}

fn angle_address(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument[start..]
        .find('>')
        .map_or(argument.len(), |i| start + i);
    argument[start..end].to_owned()
}

async fn session(stream: TcpStream, state: Arc<Mutex<Behaviour>>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    macro_rules! reply {
        ($text:expr) => {
            if write
                .write_all(format!("{}\r\n", $text).as_bytes())
                .await
                .is_err()
            {
                return;
            }
        };
    }
    let silence = {
        let mut state = state.lock().expect("state");
        state.sessions += 1;
        state.silence
    };
    if silence == Some(Silence::Greeting) {
        state.lock().expect("state").stalled += 1;
        // Wait, saying nothing, until the client hangs up.
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink).await;
        return;
    }
    reply!("220 sink.test ESMTP ready");
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let upper = text.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            reply!("250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING");
        } else if upper.starts_with("HELO") {
            reply!("250 sink.test");
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = angle_address(&text[10..]);
            rcpt_to.clear();
            reply!("250 2.1.0 OK");
        } else if upper.starts_with("RCPT TO:") {
            let address = angle_address(&text[8..]);
            let refused = state
                .lock()
                .expect("state")
                .refused_recipients
                .iter()
                .find(|(a, _)| *a == address.to_ascii_lowercase())
                .map(|(_, r)| r.clone());
            match refused {
                Some(reply) => reply!(reply),
                None => {
                    rcpt_to.push(address);
                    reply!("250 2.1.5 OK");
                }
            }
        } else if upper == "DATA" {
            if rcpt_to.is_empty() {
                reply!("554 5.5.1 no valid recipients");
                continue;
            }
            reply!("354 End data with <CR><LF>.<CR><LF>");
            let mut data = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
                // Dot-unstuffing: a leading ".." was a "." in the message.
                let content = if line.starts_with(b"..") {
                    &line[1..]
                } else {
                    &line[..]
                };
                data.extend_from_slice(content);
            }
            let stall = {
                let state = state.lock().expect("state");
                state
                    .stall_data_after
                    .is_some_and(|n| state.received.len() >= n)
            };
            if silence == Some(Silence::EndOfData) || stall {
                state.lock().expect("state").stalled += 1;
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink).await;
                return;
            }
            let answer = {
                let mut state = state.lock().expect("state");
                let answer = state
                    .data_replies
                    .pop_front()
                    .or_else(|| state.data_reply_always.clone());
                if answer.is_none() {
                    state.received.push(Received::new(
                        mail_from.clone(),
                        std::mem::take(&mut rcpt_to),
                        data,
                    ));
                }
                answer
            };
            match answer {
                Some(reply) => reply!(reply),
                None => reply!("250 2.0.0 queued"),
            }
            if state.lock().expect("state").hang_up_after_each {
                return;
            }
        } else if upper == "RSET" {
            mail_from.clear();
            rcpt_to.clear();
            reply!("250 2.0.0 OK");
        } else if upper == "NOOP" {
            reply!("250 2.0.0 OK");
        } else if upper == "QUIT" {
            reply!("221 2.0.0 bye");
            return;
        } else {
            reply!("502 5.5.2 command not recognised");
        }
    }
}

impl Received {
    /// The text/plain part, decoded, wherever it sits (alternative inside mixed, or alone).
    pub fn text(&self) -> String {
        fn find(part: &mailparse::ParsedMail<'_>) -> Option<String> {
            if part.subparts.is_empty() {
                let is_attachment = part
                    .get_content_disposition()
                    .params
                    .contains_key("filename");
                return (part.ctype.mimetype == "text/plain" && !is_attachment)
                    .then(|| part.get_body().unwrap_or_default());
            }
            part.subparts.iter().find_map(find)
        }
        find(&self.parsed()).unwrap_or_default()
    }

    /// The path (and query) of the first link in the text part whose path starts with
    /// `prefix`, e.g. `/apply/confirm/`. Paths, not whole URLs: the host is the configured
    /// base URL, which a test server on port 0 does not know in advance.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let text = self.text();
        let start = text.find(prefix)?;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == ')')
            .map_or(text.len(), |e| start + e);
        Some(text[start..end].to_owned())
    }
}

/// A MIME entity (a message, or what a member decrypted) as a reader sees it: every header
/// and every part decoded from its transfer encoding.
pub fn decoded_mime(raw: &[u8]) -> String {
    let mut out = String::new();
    walk_decoded(&mailparse::parse_mail(raw).expect("MIME"), &mut out);
    out
}

/// Every header and every part, decoded from its transfer encoding.
fn walk_decoded(part: &mailparse::ParsedMail<'_>, out: &mut String) {
    for header in &part.headers {
        out.push_str(&header.get_key());
        out.push_str(": ");
        out.push_str(&header.get_value());
        out.push('\n');
    }
    out.push('\n');
    if part.subparts.is_empty() {
        let body = part.get_body_raw().unwrap_or_default();
        out.push_str(&String::from_utf8_lossy(&body));
        out.push('\n');
    }
    for sub in &part.subparts {
        walk_decoded(sub, out);
    }
}

/// A PGP/MIME encrypted message opened with `recipient`'s test key: the inner MIME entity.
fn open(data: &[u8], recipient: &str) -> Option<Vec<u8>> {
    let parsed = mailparse::parse_mail(data).ok()?;
    if parsed.ctype.mimetype != "multipart/encrypted" {
        return None;
    }
    let armored = parsed.subparts.get(1)?.get_body().ok()?;
    let secret = super::keys::secret(recipient)?;
    super::keys::decrypt(&armored, &secret, None).ok()
}

impl SmtpServer {
    /// Waits for a message to `recipient` whose subject contains `subject`.
    pub async fn wait_for(&self, recipient: &str, subject: &str) -> Received {
        crate::helpers::eventually(
            std::time::Duration::from_secs(20),
            &format!("mail to {recipient} about {subject:?}"),
            || async {
                self.received().into_iter().find(|m| {
                    m.rcpt_to.iter().any(|r| r == recipient)
                        && m.header("Subject").is_some_and(|s| s.contains(subject))
                })
            },
        )
        .await
    }

    /// Waits until `count` messages to `recipient` about `subject` arrived; returns the
    /// `count`-th, in the order they arrived.
    pub async fn wait_for_nth(&self, recipient: &str, subject: &str, count: usize) -> Received {
        crate::helpers::eventually(
            std::time::Duration::from_secs(20),
            &format!("mail {count} to {recipient} about {subject:?}"),
            || async {
                let matching: Vec<Received> = self
                    .to(recipient)
                    .into_iter()
                    .filter(|m| m.header("Subject").is_some_and(|s| s.contains(subject)))
                    .collect();
                matching.get(count.saturating_sub(1)).cloned()
            },
        )
        .await
    }

    pub fn to(&self, recipient: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r == recipient))
            .collect()
    }
}
