//! natterd killed with SIGKILL again and again while XEP-0198 clients send
//! and receive (DESIGN.md principle 4, "Delivery is a contract"):
//!
//! * every message a sender got an `<a h/>` for reaches the recipient;
//! * a message the recipient acknowledged (and whose acknowledgement the
//!   server confirmed, see below) never comes back;
//! * within one recipient connection each sender's messages arrive in order;
//! * a redelivered message keeps its XEP-0359 stanza-id and has a XEP-0203 delay.
//!
//! The recipient knows its `<a h/>` was processed when the answer to the
//! `<r/>` it sends right behind it arrives: the server handles a stream in
//! order and removes acknowledged entries from the queue (commit included)
//! before it reads on. An `<a h/>` still on the wire when the server dies is
//! not processed, so that message legitimately comes back; those are counted
//! apart (`redelivered_after_unconfirmed_ack`).
//!
//! A sender resends after a reconnection what it has no `<a h/>` for, with the
//! same id; the server queues such a resend as a new message (a new
//! stanza-id), so the recipient may see an id twice with two stanza-ids
//! (`resent_copies`, allowed). A stanza-id seen twice is a redelivery of one
//! queue entry.
//!
//! The seed of the kill timings is printed; `CRASH_SM_SEED=<n>` replays it.

use base64::Engine;
use natter_xml::{Event, Limits, Stanza, StreamParser};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "pw";
const SENDERS: usize = 3;
/// Messages sent in one go, followed by an `<r/>`.
const BURST: usize = 20;
/// Bursts a sender may have sent and not yet seen answered.
const MAX_OUTSTANDING: usize = 3;
/// Pause between a sender's bursts.
const PACE: Duration = Duration::from_millis(30);
/// New messages per sender at most (it also stops when the kills are done).
const MAX_PER_SENDER: u32 = 5000;
/// The recipient acknowledges by itself after this many stanzas.
const RCPT_ACK_EVERY: usize = 10;
const KILL_ROUNDS: usize = 6;
/// Any single read or write of a client.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client keeps trying to log in again after losing its connection.
const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How long the recipient may take to get every acknowledged message at the end.
const CATCH_UP: Duration = Duration::from_secs(60);
/// The whole test.
const OVERALL: Duration = Duration::from_secs(240);

// ---------------------------------------------------------------------------
// natterd as a child process (same approach as crash.rs).

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn natterd(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// Starts natterd and waits for it to serve. Its warnings and errors are
/// echoed (prefixed with the generation), the rest of its log is dropped.
fn start(config: &Path, generation: usize) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("natterd serving") {
                let _ = tx.send(());
            }
            if line.contains("ERROR") || line.contains("WARN") || line.contains("panicked") {
                eprintln!("[natterd #{generation}] {line}");
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("natterd serving within 30 s");
    child
}

/// The running natterd; killed by PID whenever the test ends, however it ends.
struct Natterd {
    config: PathBuf,
    child: Mutex<Option<Child>>,
    generation: AtomicU32,
}

impl Natterd {
    fn start(config: PathBuf) -> Natterd {
        let child = start(&config, 0);
        Natterd {
            config,
            child: Mutex::new(Some(child)),
            generation: AtomicU32::new(0),
        }
    }

    fn kill9(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    fn restart(&self) {
        let g = self.generation.fetch_add(1, Ordering::SeqCst) as usize + 1;
        let child = start(&self.config, g);
        let old = self.child.lock().unwrap().replace(child);
        assert!(old.is_none(), "restarted a running natterd");
    }

    /// SIGTERM; the exit status.
    fn terminate(&self) -> std::process::ExitStatus {
        let mut c = self.child.lock().unwrap().take().expect("natterd runs");
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("natterd did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Natterd {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock() {
            if let Some(mut c) = guard.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// xorshift64*: the kill timings, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------
// A tiny XMPP client over plain TCP whose every failure is a value: the
// server dies under it on purpose.

/// Why a connection is unusable.
type Lost = String;

struct Conn {
    tcp: TcpStream,
    parser: StreamParser,
    /// Stanzas (message, presence, iq) received since `<enabled/>`: the XEP-0198 h.
    received: u32,
}

const SM: &str = "urn:xmpp:sm:3";

fn text(s: &Stanza) -> String {
    String::from_utf8_lossy(s.bytes()).into_owned()
}

fn is_stanza(s: &Stanza) -> bool {
    s.ns() == "jabber:client" && matches!(s.name(), "message" | "presence" | "iq")
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Result<Conn, Lost> {
        let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(Conn {
            tcp,
            parser: StreamParser::new(Limits::default()),
            received: 0,
        })
    }

    async fn send(&mut self, data: &str) -> Result<(), Lost> {
        tokio::time::timeout(IO_TIMEOUT, self.tcp.write_all(data.as_bytes()))
            .await
            .map_err(|_| "write timed out".to_string())?
            .map_err(|e| format!("write: {e}"))
    }

    /// The next stream event. Cancel-safe: the only await is the socket read.
    async fn event(&mut self) -> Result<Event, Lost> {
        loop {
            match self.parser.next_event() {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) => return Err(format!("BUG: the server sent bad XML: {e}")),
            }
            let mut buf = [0u8; 16384];
            let n = self
                .tcp
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.parser.feed(&buf[..n]);
        }
    }

    /// The next top-level element (cancel-safe); counts stanzas for XEP-0198.
    async fn element(&mut self) -> Result<Stanza, Lost> {
        match self.event().await? {
            Event::Stanza(s)
                if s.ns() == "http://etherx.jabber.org/streams" && s.name() == "error" =>
            {
                Err(format!("stream error: {}", text(&s)))
            }
            Event::Stanza(s) => {
                if is_stanza(&s) {
                    self.received = self.received.wrapping_add(1);
                }
                Ok(s)
            }
            Event::StreamClose => Err("stream closed by the server".into()),
            Event::StreamOpen(_) => Err("BUG: unexpected stream header".into()),
        }
    }

    /// `element` with the I/O timeout (not for use inside `select!`).
    async fn next(&mut self) -> Result<Stanza, Lost> {
        tokio::time::timeout(IO_TIMEOUT, self.element())
            .await
            .map_err(|_| "timed out waiting for the server".to_string())?
    }

    async fn open(&mut self) -> Result<(), Lost> {
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>").await?;
        match tokio::time::timeout(IO_TIMEOUT, self.event()).await {
            Ok(Ok(Event::StreamOpen(_))) => Ok(()),
            Ok(Ok(_)) => Err("BUG: expected a stream header".into()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("timed out waiting for the stream header".into()),
        }
    }

    /// Connects, authenticates with PLAIN, binds `resource` and enables
    /// stream management (no resumption: the server forgets it on restart).
    async fn login(addr: SocketAddr, user: &str, resource: &str) -> Result<Conn, Lost> {
        let mut c = Conn::connect(addr).await?;
        c.open().await?;
        let f = c.next().await?;
        if f.name() != "features" {
            return Err(format!("BUG: expected features, got {}", text(&f)));
        }
        let ir = natter_sasl::plain_initial_response(None, user, PASSWORD);
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            base64::engine::general_purpose::STANDARD.encode(ir)
        ))
        .await?;
        let r = c.next().await?;
        if r.name() != "success" {
            return Err(format!("BUG: login of {user} refused: {}", text(&r)));
        }
        c.parser.restart();
        c.open().await?;
        c.next().await?; // features
        c.send(&format!("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>")).await?;
        loop {
            let s = c.next().await?;
            if s.name() == "iq" && s.id().as_deref() == Some("bind1") {
                if s.stanza_type().as_deref() != Some("result") {
                    return Err(format!("BUG: bind failed: {}", text(&s)));
                }
                break;
            }
        }
        c.send("<enable xmlns='urn:xmpp:sm:3'/>").await?;
        loop {
            let s = c.next().await?;
            if s.ns() == SM && s.name() == "enabled" {
                c.received = 0;
                return Ok(c);
            }
            if s.ns() == SM && s.name() == "failed" {
                return Err(format!("BUG: <enable/> failed: {}", text(&s)));
            }
        }
    }

    /// `login`, retried while the server is down (up to `RECONNECT_FOR`).
    async fn login_retrying(addr: SocketAddr, user: &str, resource: &str, bugs: &Bugs) -> Conn {
        let deadline = Instant::now() + RECONNECT_FOR;
        loop {
            match Conn::login(addr, user, resource).await {
                Ok(c) => return c,
                Err(e) => {
                    bugs.check(user, &e);
                    assert!(
                        Instant::now() < deadline,
                        "{user} could not log in again within {RECONNECT_FOR:?}: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Anomalies seen by the clients (anything marked BUG, stanza errors).
#[derive(Default)]
struct Bugs(Mutex<Vec<String>>);

impl Bugs {
    fn check(&self, who: &str, e: &str) {
        if e.contains("BUG") {
            self.add(format!("{who}: {e}"));
        }
    }
    fn add(&self, e: String) {
        eprintln!("!! {e}");
        self.0.lock().unwrap().push(e);
    }
}

// ---------------------------------------------------------------------------
// Shared bookkeeping.

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
struct MsgId {
    sender: usize,
    n: u32,
}

impl MsgId {
    fn parse(id: &str) -> Option<MsgId> {
        let rest = id.strip_prefix('s')?;
        let (k, n) = rest.split_once('-')?;
        Some(MsgId {
            sender: k.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

/// What a received copy is, decided when it arrives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CopyKind {
    /// The first copy of this queue entry (stanza-id).
    First,
    /// Again, and the recipient had not acknowledged it.
    RedeliveredUnacked,
    /// Again, after an `<a h/>` the server had not confirmed processing.
    AfterUnconfirmedAck,
    /// Again, after an `<a h/>` the server confirmed processing.
    DuplicatedAfterAck,
}

struct Reception {
    /// The recipient connection it arrived on (1-based).
    epoch: u32,
    id: MsgId,
    /// The server's XEP-0359 stanza-id.
    sid: String,
    delayed: bool,
    copy: CopyKind,
    /// The stanza-id was already received on this same connection.
    same_conn: bool,
}

#[derive(Default)]
struct Ledger {
    /// Ids a sender got an `<a h/>` for.
    sender_acked: HashSet<MsgId>,
    /// How often each id was written to the server (first send plus resends).
    sends: HashMap<MsgId, u32>,
    /// Message errors the senders got back.
    bounced: Vec<String>,
    receptions: Vec<Reception>,
    /// Ids the recipient has (some copy of).
    received_ids: HashSet<MsgId>,
    /// Stanza-ids the recipient sent an `<a h/>` for.
    rcpt_acked: HashSet<String>,
    /// Stanza-ids whose `<a h/>` the server confirmed processing.
    rcpt_confirmed: HashSet<String>,
    /// Stanza-ids received, with the connection of the last copy.
    sid_seen: HashMap<String, u32>,
    /// Details of queue entries that arrived twice on one connection.
    same_conn_details: Vec<String>,
}

struct Shared {
    addr: SocketAddr,
    ledger: Mutex<Ledger>,
    bugs: Bugs,
    /// No new messages (senders), then: take your final ack and leave (recipient).
    stop_senders: AtomicBool,
    stop_recipient: AtomicBool,
    /// Successful logins per client (senders 0..SENDERS, then the recipient).
    logins: Vec<AtomicU32>,
    /// Clients that are finished (they log in no more).
    finished: Vec<AtomicBool>,
}

// ---------------------------------------------------------------------------
// Senders.

async fn sender(k: usize, sh: Arc<Shared>) -> u32 {
    let user = format!("sender{k}");
    let mut next_n: u32 = 0;
    // Sent on an earlier connection and never acknowledged, oldest first.
    let mut pending: VecDeque<u32> = VecDeque::new();
    let mut resent = 0u32;
    'connections: loop {
        let mut c = Conn::login_retrying(sh.addr, &user, "s", &sh.bugs).await;
        sh.logins[k].fetch_add(1, Ordering::SeqCst);
        // The messages sent since <enable/>, in order; h of them are acked.
        let mut sent: Vec<u32> = Vec::new();
        let mut acked_h: usize = 0;
        let mut outstanding = 0usize;
        let mut next_burst = tokio::time::Instant::now();
        let lost: Lost = loop {
            let stopping = sh.stop_senders.load(Ordering::SeqCst) || next_n >= MAX_PER_SENDER;
            if stopping && pending.is_empty() && outstanding == 0 && acked_h == sent.len() {
                let _ = c.send("</stream:stream>").await;
                break 'connections;
            }
            let have_work = !pending.is_empty() || !stopping;
            let can_send = have_work && outstanding < MAX_OUTSTANDING;
            tokio::select! {
                r = c.element() => {
                    let s = match r {
                        Ok(s) => s,
                        Err(e) => break e,
                    };
                    match (s.ns(), s.name()) {
                        (SM, "a") => {
                            let Some(h) = s.attr("h").and_then(|h| h.parse::<usize>().ok()) else {
                                sh.bugs.add(format!("{user}: bad <a/>: {}", text(&s)));
                                break "bad ack".into();
                            };
                            if h > sent.len() || h < acked_h {
                                sh.bugs.add(format!(
                                    "{user}: <a h='{h}'/> but {} sent, {acked_h} acked before",
                                    sent.len()
                                ));
                                break "bad ack".into();
                            }
                            {
                                let mut l = sh.ledger.lock().unwrap();
                                for &n in &sent[acked_h..h] {
                                    l.sender_acked.insert(MsgId { sender: k, n });
                                }
                            }
                            acked_h = h;
                            outstanding = outstanding.saturating_sub(1);
                        }
                        (SM, "r") => {
                            if let Err(e) = c.send(&format!("<a xmlns='{SM}' h='{}'/>", c.received)).await {
                                break e;
                            }
                        }
                        (_, "message") if s.stanza_type().as_deref() == Some("error") => {
                            sh.ledger.lock().unwrap().bounced.push(text(&s));
                        }
                        _ => {
                            sh.bugs.add(format!("{user}: unexpected {}", text(&s)));
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_burst), if can_send => {
                    let mut burst = String::new();
                    let mut ids = Vec::new();
                    while ids.len() < BURST {
                        let n = if let Some(n) = pending.pop_front() {
                            resent += 1;
                            n
                        } else if !stopping && next_n < MAX_PER_SENDER {
                            next_n += 1;
                            next_n
                        } else {
                            break;
                        };
                        burst.push_str(&format!(
                            "<message to='rcpt@localhost' type='chat' id='s{k}-{n}'><body>{n}</body></message>"
                        ));
                        ids.push(n);
                    }
                    burst.push_str("<r xmlns='urn:xmpp:sm:3'/>");
                    {
                        let mut l = sh.ledger.lock().unwrap();
                        for &n in &ids {
                            *l.sends.entry(MsgId { sender: k, n }).or_default() += 1;
                        }
                    }
                    // Counted as sent even if the write fails half way: the
                    // server may have some of it.
                    sent.extend_from_slice(&ids);
                    outstanding += 1;
                    next_burst = tokio::time::Instant::now() + PACE;
                    if let Err(e) = c.send(&burst).await {
                        break e;
                    }
                }
                _ = tokio::time::sleep(IO_TIMEOUT) => {
                    break "no answer from the server".into();
                }
            }
        };
        sh.bugs.check(&user, &lost);
        // What has no ack goes again, before anything new, in order.
        for &n in sent[acked_h..].iter().rev() {
            pending.push_front(n);
        }
        eprintln!(
            "{user}: connection lost ({lost}); {} to resend, {next_n} sent so far",
            pending.len()
        );
    }
    sh.finished[k].store(true, Ordering::SeqCst);
    eprintln!("{user}: done, {next_n} messages, {resent} resent");
    resent
}

// ---------------------------------------------------------------------------
// The recipient.

async fn recipient(sh: Arc<Shared>) {
    let me = SENDERS;
    let mut epoch = 0u32;
    'connections: loop {
        let mut c = Conn::login_retrying(sh.addr, "rcpt", "r", &sh.bugs).await;
        epoch += 1;
        // Stanza-ids of the stanzas received since <enabled/> (None: not a
        // test message), in order; index i is stanza i+1 for h.
        let mut got: Vec<Option<String>> = Vec::new();
        let mut acked_upto = 0usize;
        // h values of <a/>s each followed by an <r/> not yet answered.
        let mut confirm: VecDeque<usize> = VecDeque::new();
        let mut confirmed_upto = 0usize;
        let mut finishing = false;
        let lost: Lost = 'conn: {
            if let Err(e) = c.send("<presence/>").await {
                break 'conn e;
            }
            sh.logins[me].fetch_add(1, Ordering::SeqCst);
            loop {
                let want_finish = sh.stop_recipient.load(Ordering::SeqCst);
                if want_finish && !finishing {
                    finishing = true;
                    if let Err(e) = ack(&sh, &mut c, &got, &mut acked_upto, &mut confirm).await {
                        break 'conn e;
                    }
                }
                if finishing && confirm.is_empty() && confirmed_upto == got.len() {
                    let _ = c.send("</stream:stream>").await;
                    break 'connections;
                }
                let s = tokio::select! {
                    r = c.element() => match r {
                        Ok(s) => s,
                        Err(e) => break 'conn e,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(100)), if !finishing => continue,
                    _ = tokio::time::sleep(IO_TIMEOUT), if finishing => {
                        break 'conn "no answer to the final <r/>".into();
                    }
                };
                let mut ack_now = false;
                if is_stanza(&s) {
                    let mut sid = None;
                    if s.name() == "message" {
                        let id = s.id().and_then(|i| MsgId::parse(&i));
                        let stanza_sid = s.element().ok().and_then(|e| {
                            e.get_child("stanza-id", "urn:xmpp:sid:0")
                                .and_then(|c| c.attr("id").map(str::to_owned))
                        });
                        match (id, stanza_sid) {
                            (Some(id), Some(x)) => {
                                let delayed = s.has_child("delay", "urn:xmpp:delay");
                                let mut l = sh.ledger.lock().unwrap();
                                l.received_ids.insert(id);
                                let prev = l.sid_seen.insert(x.clone(), epoch);
                                let copy = if prev.is_none() {
                                    CopyKind::First
                                } else if l.rcpt_confirmed.contains(&x) {
                                    CopyKind::DuplicatedAfterAck
                                } else if l.rcpt_acked.contains(&x) {
                                    CopyKind::AfterUnconfirmedAck
                                } else {
                                    CopyKind::RedeliveredUnacked
                                };
                                let same_conn = prev == Some(epoch);
                                if same_conn {
                                    let first =
                                        got.iter().position(|g| g.as_deref() == Some(x.as_str()));
                                    let first_delayed = l
                                        .receptions
                                        .iter()
                                        .rev()
                                        .find(|r| r.sid == x)
                                        .map(|r| r.delayed);
                                    let d = format!(
                                        "s{}-{} (stanza-id {x}) twice on connection {epoch}: first as stanza #{} \
                                         (delay: {first_delayed:?}), again as stanza #{} (delay: {delayed}); \
                                         h acked before the second copy: {acked_upto}, confirmed: {confirmed_upto} ({copy:?})",
                                        id.sender,
                                        id.n,
                                        first.map_or(0, |i| i + 1),
                                        got.len() + 1,
                                    );
                                    eprintln!("!! {d}");
                                    l.same_conn_details.push(d);
                                }
                                l.receptions.push(Reception {
                                    epoch,
                                    id,
                                    sid: x.clone(),
                                    delayed,
                                    copy,
                                    same_conn,
                                });
                                sid = Some(x);
                            }
                            _ => sh
                                .bugs
                                .add(format!("rcpt: unexpected message {}", text(&s))),
                        }
                    }
                    got.push(sid);
                    // While finishing, everything that still arrives is acknowledged.
                    ack_now = finishing || got.len() - acked_upto >= RCPT_ACK_EVERY;
                } else if s.ns() == SM && s.name() == "r" {
                    ack_now = true;
                } else if s.ns() == SM && s.name() == "a" {
                    let Some(h) = confirm.pop_front() else {
                        sh.bugs
                            .add(format!("rcpt: <a/> without an <r/>: {}", text(&s)));
                        break 'conn "bad <a/>".into();
                    };
                    let mut l = sh.ledger.lock().unwrap();
                    for x in got[confirmed_upto..h].iter().flatten() {
                        l.rcpt_confirmed.insert(x.clone());
                    }
                    confirmed_upto = h;
                } else {
                    sh.bugs.add(format!("rcpt: unexpected {}", text(&s)));
                }
                if ack_now {
                    if let Err(e) = ack(&sh, &mut c, &got, &mut acked_upto, &mut confirm).await {
                        break 'conn e;
                    }
                }
            }
        };
        sh.bugs.check("rcpt", &lost);
        eprintln!(
            "rcpt: connection {epoch} lost ({lost}) after {} stanzas",
            got.len()
        );
        if finishing && sh.stop_recipient.load(Ordering::SeqCst) {
            // The final ack did not make it: log in once more and do it again.
            eprintln!("rcpt: final acknowledgement interrupted; logging in again");
        }
    }
    sh.finished[me].store(true, Ordering::SeqCst);
    eprintln!("rcpt: done after {epoch} connections");
}

/// The recipient's `<a h/>` for everything it has, and an `<r/>` whose
/// answer confirms the server processed it.
async fn ack(
    sh: &Shared,
    c: &mut Conn,
    got: &[Option<String>],
    acked_upto: &mut usize,
    confirm: &mut VecDeque<usize>,
) -> Result<(), Lost> {
    let h = got.len();
    {
        let mut l = sh.ledger.lock().unwrap();
        for x in got[*acked_upto..h].iter().flatten() {
            l.rcpt_acked.insert(x.clone());
        }
    }
    *acked_upto = h;
    confirm.push_back(h);
    c.send(&format!("<a xmlns='{SM}' h='{h}'/><r xmlns='{SM}'/>"))
        .await
}

/// One more login of the recipient (no SM): what the queue still holds.
async fn leftovers(addr: SocketAddr, bugs: &Bugs) -> Vec<String> {
    let mut c = Conn::login_retrying(addr, "rcpt", "check", bugs).await;
    c.send("<presence/><iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await
        .expect("send presence and ping");
    let mut left = Vec::new();
    loop {
        let s = c.next().await.expect("final check connection");
        match s.name() {
            "iq" if s.id().as_deref() == Some("ping") => break,
            "message" => left.push(text(&s)),
            _ => {}
        }
    }
    let _ = c.send("</stream:stream>").await;
    left
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_stream_management_loses_and_duplicates_nothing_acked() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("natterd.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[listen]\nc2s = \"127.0.0.1:{port}\"\nc2s_tls = \"127.0.0.1:{}\"\n[c2s]\nrequire_tls = false\n",
            dir.path().join("data").display(),
            free_port()
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for u in ["sender0", "sender1", "sender2", "rcpt"] {
        let out = natterd(&config, &["user", "add", u, "--password", PASSWORD]);
        assert!(out.status.success(), "user add {u}: {out:?}");
    }
    let server = Arc::new(Natterd::start(config.clone()));
    let seed = std::env::var("CRASH_SM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("seed {seed} (CRASH_SM_SEED={seed} replays the kill timings)");

    let sh = Arc::new(Shared {
        addr,
        ledger: Mutex::new(Ledger::default()),
        bugs: Bugs::default(),
        stop_senders: AtomicBool::new(false),
        stop_recipient: AtomicBool::new(false),
        logins: (0..=SENDERS).map(|_| AtomicU32::new(0)).collect(),
        finished: (0..=SENDERS).map(|_| AtomicBool::new(false)).collect(),
    });

    let body = {
        let sh = sh.clone();
        let server = server.clone();
        async move {
            let rcpt = tokio::spawn(recipient(sh.clone()));
            let senders: Vec<_> = (0..SENDERS)
                .map(|k| tokio::spawn(sender(k, sh.clone())))
                .collect();
            let mut rng = Rng(seed);
            for round in 1..=KILL_ROUNDS {
                // Everyone still at work is (back) online before the next kill.
                let pause = Duration::from_millis(rng.between(200, 1500));
                tokio::time::sleep(pause).await;
                let (sent, delivered) = {
                    let l = sh.ledger.lock().unwrap();
                    (l.sender_acked.len(), l.receptions.len())
                };
                let logins: Vec<u32> = sh.logins.iter().map(|l| l.load(Ordering::SeqCst)).collect();
                {
                    let server = server.clone();
                    tokio::task::spawn_blocking(move || {
                        server.kill9();
                        server.restart();
                    })
                    .await
                    .unwrap();
                }
                eprintln!(
                    "kill round {round}: SIGKILL after {pause:?} (acked so far {sent}, received {delivered}); restarted"
                );
                // Wait until every client still at work has logged in again.
                let deadline = Instant::now() + RECONNECT_FOR;
                loop {
                    let all_back = (0..=SENDERS).all(|i| {
                        sh.finished[i].load(Ordering::SeqCst)
                            || sh.logins[i].load(Ordering::SeqCst) > logins[i]
                    });
                    if all_back {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "clients did not come back after round {round}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            sh.stop_senders.store(true, Ordering::SeqCst);
            let mut resent = 0;
            for s in senders {
                resent += s.await.expect("sender task");
            }
            // The recipient catches up with everything the senders had acked.
            let deadline = Instant::now() + CATCH_UP;
            loop {
                let missing = {
                    let l = sh.ledger.lock().unwrap();
                    l.sender_acked
                        .iter()
                        .filter(|id| !l.received_ids.contains(id))
                        .count()
                };
                if missing == 0 {
                    break;
                }
                if Instant::now() > deadline {
                    eprintln!("{missing} acked messages still missing after {CATCH_UP:?}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sh.stop_recipient.store(true, Ordering::SeqCst);
            rcpt.await.expect("recipient task");
            let left = leftovers(sh.addr, &sh.bugs).await;
            (resent, left)
        }
    };
    let (resent, left) = match tokio::time::timeout(OVERALL, body).await {
        Ok(r) => r,
        Err(_) => panic!("the test did not finish within {OVERALL:?} (seed {seed})"),
    };
    let status = tokio::task::spawn_blocking({
        let server = server.clone();
        move || server.terminate()
    })
    .await
    .unwrap();
    assert!(
        status.success(),
        "natterd exit status after SIGTERM: {status}"
    );

    // ---- The verdict.
    let l = sh.ledger.lock().unwrap();
    let mut lost: Vec<MsgId> = l
        .sender_acked
        .iter()
        .filter(|id| !l.received_ids.contains(id))
        .copied()
        .collect();
    lost.sort();
    let mut sids_of: HashMap<MsgId, HashSet<&str>> = HashMap::new();
    let mut first_seen: HashSet<MsgId> = HashSet::new();
    // (epoch, sender) -> last first-time n.
    let mut last_n: HashMap<(u32, usize), u32> = HashMap::new();
    let (mut duplicated_after_ack, mut redelivered_unacked, mut redelivered_unconfirmed) =
        (0, 0, 0);
    let (mut out_of_order, mut resent_copies, mut undelayed_redelivery, mut same_conn_dup) =
        (Vec::new(), 0, 0, 0);
    for r in &l.receptions {
        match r.copy {
            CopyKind::First => {}
            CopyKind::RedeliveredUnacked => redelivered_unacked += 1,
            CopyKind::AfterUnconfirmedAck => redelivered_unconfirmed += 1,
            CopyKind::DuplicatedAfterAck => duplicated_after_ack += 1,
        }
        if r.same_conn {
            same_conn_dup += 1;
        } else if r.copy != CopyKind::First && !r.delayed {
            undelayed_redelivery += 1;
        }
        let copies = sids_of.entry(r.id).or_default();
        if copies.insert(r.sid.as_str()) && copies.len() > 1 {
            resent_copies += 1;
        }
        if first_seen.insert(r.id) {
            if let Some(&prev) = last_n.get(&(r.epoch, r.id.sender)) {
                if r.id.n <= prev {
                    out_of_order.push(format!(
                        "connection {}: s{}-{} after s{}-{}",
                        r.epoch, r.id.sender, r.id.n, r.id.sender, prev
                    ));
                }
            }
            last_n.insert((r.epoch, r.id.sender), r.id.n);
        }
    }
    let more_copies_than_sends: Vec<String> = sids_of
        .iter()
        .filter(|(id, sids)| sids.len() as u32 > l.sends.get(id).copied().unwrap_or(0))
        .map(|(id, sids)| format!("s{}-{}: {} stanza-ids", id.sender, id.n, sids.len()))
        .collect();
    println!(
        "acked={} delivered={} lost={} duplicated_after_ack={} redelivered_unacked={} \
         redelivered_after_unconfirmed_ack={} same_connection_dups={same_conn_dup} resent_copies={} sender_resends={} bounced={} \
         leftover_in_queue={} kill_rounds={KILL_ROUNDS} elapsed={:?}",
        l.sender_acked.len(),
        l.receptions.len(),
        lost.len(),
        duplicated_after_ack,
        redelivered_unacked,
        redelivered_unconfirmed,
        resent_copies,
        resent,
        l.bounced.len(),
        left.len(),
        started.elapsed(),
    );
    let bugs = sh.bugs.0.lock().unwrap();
    assert!(bugs.is_empty(), "protocol anomalies: {bugs:#?}");
    assert!(
        lost.is_empty(),
        "{} acked messages never arrived (seed {seed}), e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert_eq!(
        duplicated_after_ack, 0,
        "confirmed-acked messages came back (seed {seed}); same connection: {:#?}",
        l.same_conn_details
    );
    assert_eq!(
        same_conn_dup, 0,
        "a queue entry arrived twice on one connection (seed {seed}): {:#?}",
        l.same_conn_details
    );
    assert!(
        out_of_order.is_empty(),
        "out of order (seed {seed}): {:?}",
        &out_of_order[..out_of_order.len().min(20)]
    );
    assert_eq!(
        undelayed_redelivery, 0,
        "redelivered without a XEP-0203 delay (seed {seed})"
    );
    assert!(
        more_copies_than_sends.is_empty(),
        "more copies than sends (seed {seed}): {more_copies_than_sends:?}"
    );
    assert!(l.bounced.is_empty(), "messages bounced: {:?}", l.bounced);
    assert!(
        left.is_empty(),
        "still queued after the final ack: {left:?}"
    );
    assert!(
        l.sender_acked.len() > 100,
        "too little traffic to mean anything"
    );
}
