//! The senders and the recipient.
use super::*;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------------------
// Senders.

pub async fn sender(k: usize, sh: Arc<Shared>) -> u32 {
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

pub async fn recipient(sh: Arc<Shared>) {
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
pub async fn ack(
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
pub async fn leftovers(addr: SocketAddr, bugs: &Bugs) -> Vec<String> {
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
