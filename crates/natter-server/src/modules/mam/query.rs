//! The archive query (XEP-0313 §4): a data form of filters, XEP-0059 RSM
//! paging, one `<message><result/></message>` per match, then `<fin/>`.
//!
//! * Filters: `with` (bare: any resource; full: only it), `start`/`end`
//!   (XEP-0082, inclusive), and from `#extended` `after-id`/`before-id`
//!   (exclusive) and `ids`.
//! * Paging: `<max/>` (default [`DEFAULT_MAX`]; more than [`MAX_PAGE`] is
//!   refused with `policy-violation`), `<after>ID</after>`,
//!   `<before>ID</before>`, and an empty `<before/>` for the last page.
//!   Given both, RSM `after`/`before` take the place of `after-id`/`before-id`.
//!   `<flip-page/>` sends a page newest first.
//! * `<fin complete='true'>` marks the page holding the last match in the
//!   paging direction (the newest going forward, the oldest going
//!   backward); `<first/>`/`<last/>` are the ids of the first and last
//!   result sent. No `<count/>` (optional in RSM, a count over a large
//!   archive is not cheap).
//! * Errors: `item-not-found` for an after/before id not in the archive;
//!   `bad-request` for a form that is not a submit form of this namespace,
//!   an unknown field, a bad JID or date, a bad `<max/>`, or index paging;
//!   `policy-violation` for a page larger than [`MAX_PAGE`] or more than
//!   [`MAX_IDS`] ids.

use super::NS;
use crate::c2s::session::Session;
use crate::modules::iq::Reply;
use crate::ns;
use natter_store::{ArchiveQuery, ArchivedMessage, StoreError};
use natter_xml::{Element, Stanza};

const NS_DATA: &str = "jabber:x:data";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_FORWARD: &str = "urn:xmpp:forward:0";

/// Results per page when the client gives no `<max/>`.
pub const DEFAULT_MAX: usize = 50;
/// The largest page served.
pub const MAX_PAGE: usize = 250;
/// The most ids one `ids` filter may name.
pub const MAX_IDS: usize = 250;

/// The query form (an `<iq type='get'>` with an empty query).
pub fn form() -> Reply {
    let field = |var: &str, ty: &str| {
        Element::new("field", NS_DATA)
            .with_attr("var", var)
            .with_attr("type", ty)
    };
    let x = Element::new("x", NS_DATA)
        .with_attr("type", "form")
        .with_child(
            field("FORM_TYPE", "hidden").with_child(Element::new("value", NS_DATA).with_text(NS)),
        )
        .with_child(field("with", "jid-single"))
        .with_child(field("start", "text-single"))
        .with_child(field("end", "text-single"))
        .with_child(field("before-id", "text-single"))
        .with_child(field("after-id", "text-single"))
        .with_child(field("ids", "text-multi"));
    Reply::Result(Some(Element::new("query", NS).with_child(x)))
}

/// A parsed query request.
struct Request {
    queryid: Option<String>,
    q: ArchiveQuery,
    flip: bool,
}

fn bad(text: &str) -> Reply {
    Reply::bad_request(text)
}

/// Reads the query element into a store query, or the error to answer.
fn parse(query: &Element) -> Result<Request, Reply> {
    let mut q = ArchiveQuery {
        limit: DEFAULT_MAX,
        ..ArchiveQuery::default()
    };
    if let Some(x) = query.get_child("x", NS_DATA) {
        if x.attr("type").is_some_and(|t| t != "submit") {
            return Err(bad("the query form must be of type 'submit'"));
        }
        for f in x
            .elements()
            .filter(|e| e.name == "field" && e.ns == NS_DATA)
        {
            let var = f.attr("var").unwrap_or("");
            let values: Vec<String> = f
                .elements()
                .filter(|v| v.name == "value" && v.ns == NS_DATA)
                .map(|v| v.text())
                .collect();
            let one = || -> Result<String, Reply> {
                match values.as_slice() {
                    [v] => Ok(v.trim().to_owned()),
                    _ => Err(bad(&format!("field '{var}' needs one value"))),
                }
            };
            match var {
                "FORM_TYPE" => {
                    if one()? != NS {
                        return Err(bad("FORM_TYPE must be urn:xmpp:mam:2"));
                    }
                }
                "with" => {
                    let v = one()?;
                    let j = jid::Jid::new(&v).map_err(|_| bad("'with' is not a JID"))?;
                    q.with = Some(j.as_str().to_owned());
                }
                "start" => {
                    let v = one()?;
                    q.start_unix_ms =
                        Some(parse_datetime(&v).ok_or_else(|| bad("'start' is not a date-time"))?);
                }
                "end" => {
                    let v = one()?;
                    q.end_unix_ms =
                        Some(parse_datetime(&v).ok_or_else(|| bad("'end' is not a date-time"))?);
                }
                "after-id" => q.after_id = Some(one()?),
                "before-id" => q.before_id = Some(one()?),
                "ids" => {
                    if values.len() > MAX_IDS {
                        return Err(Reply::Error(
                            "modify",
                            "policy-violation",
                            Some(format!("at most {MAX_IDS} ids per query")),
                        ));
                    }
                    q.ids = values.iter().map(|v| v.trim().to_owned()).collect();
                }
                other => return Err(bad(&format!("unknown field '{other}'"))),
            }
        }
    }
    if let Some(set) = query.get_child("set", NS_RSM) {
        for e in set.elements() {
            let text = e.text();
            match e.name.as_str() {
                "max" => {
                    let max: usize = text
                        .trim()
                        .parse()
                        .map_err(|_| bad("<max/> must be a number"))?;
                    if max > MAX_PAGE {
                        return Err(Reply::Error(
                            "modify",
                            "policy-violation",
                            Some(format!("at most {MAX_PAGE} results per page")),
                        ));
                    }
                    q.limit = max;
                }
                "after" if text.is_empty() => return Err(bad("<after/> needs an id")),
                "after" => q.after_id = Some(text),
                "before" => {
                    q.backward = true;
                    if !text.is_empty() {
                        q.before_id = Some(text);
                    }
                }
                "index" => return Err(bad("paging by index is not supported")),
                other => return Err(bad(&format!("unknown RSM element <{other}/>"))),
            }
        }
    }
    if q.start_unix_ms
        .zip(q.end_unix_ms)
        .is_some_and(|(s, e)| s > e)
    {
        return Err(bad("'start' is after 'end'"));
    }
    Ok(Request {
        queryid: query.attr("queryid").map(str::to_owned),
        q,
        flip: query.get_child("flip-page", NS).is_some(),
    })
}

/// Answers a query: the results as messages to the asking session, then
/// the `<fin/>` in the IQ result.
pub async fn run(s: &mut Session, st: &Stanza) -> Reply {
    let Ok(el) = st.element() else {
        return bad("unreadable query");
    };
    let Some(query) = el.get_child("query", NS) else {
        return bad("missing query");
    };
    let req = match parse(query) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let store = s.shared.store.clone();
    // Messages routed before this query are in the archive once their
    // writes are committed.
    if store.write_barrier().await.is_err() {
        return Reply::error("wait", "internal-server-error");
    }
    let owner = s.bare.clone();
    let page = match crate::metrics::store_op(6, store.archive_query(&owner, req.q)).await {
        Ok(p) => p,
        Err(StoreError::NotFound) => {
            return Reply::Error(
                "cancel",
                "item-not-found",
                Some("no such id in the archive".into()),
            )
        }
        Err(StoreError::InvalidInput(t)) => {
            return Reply::Error("modify", "policy-violation", Some(t))
        }
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    let mut items = page.items;
    if req.flip {
        items.reverse();
    }
    let mut out = Vec::with_capacity(256);
    for m in &items {
        out.clear();
        result_message(&mut out, &s.full, &owner, req.queryid.as_deref(), m);
        s.send(&out);
    }
    let mut set = Element::new("set", NS_RSM);
    if let (Some(first), Some(last)) = (items.first(), items.last()) {
        set.push_child(Element::new("first", NS_RSM).with_text(first.id.clone()));
        set.push_child(Element::new("last", NS_RSM).with_text(last.id.clone()));
    } else {
        set.push_child(Element::new("count", NS_RSM).with_text("0"));
    }
    let mut fin = Element::new("fin", NS).with_child(set);
    if page.complete {
        fin.set_attr("complete", "true");
    }
    Reply::Result(Some(fin))
}

/// One result: `<message to=FULL><result queryid id><forwarded><delay/>
/// STANZA</forwarded></result></message>`.
fn result_message(
    out: &mut Vec<u8>,
    to: &str,
    owner: &str,
    queryid: Option<&str>,
    m: &ArchivedMessage,
) {
    out.extend_from_slice(b"<message to='");
    natter_xml::escape_attr(to, out);
    out.extend_from_slice(b"'><result xmlns='urn:xmpp:mam:2'");
    if let Some(q) = queryid {
        out.extend_from_slice(b" queryid='");
        natter_xml::escape_attr(q, out);
        out.push(b'\'');
    }
    out.extend_from_slice(b" id='");
    natter_xml::escape_attr(&m.id, out);
    out.extend_from_slice(b"'><forwarded xmlns='");
    out.extend_from_slice(NS_FORWARD.as_bytes());
    out.extend_from_slice(b"'><delay xmlns='urn:xmpp:delay' stamp='");
    out.extend_from_slice(crate::util::xmpp_datetime(m.stamp_unix_ms).as_bytes());
    out.extend_from_slice(b"'/>");
    match m.retracted_unix_ms {
        Some(at) => tombstone(out, owner, m, at),
        None => with_client_ns(out, &m.stanza),
    }
    out.extend_from_slice(b"</forwarded></result></message>");
}

/// The stored stanza, its top element put in `jabber:client` (inside
/// `<forwarded/>` it would otherwise inherit the forwarding namespace).
fn with_client_ns(out: &mut Vec<u8>, stanza: &[u8]) {
    let tag_end = stanza.iter().position(|&b| b == b'>').unwrap_or(0);
    let tag = &stanza[..tag_end];
    let declared = tag
        .windows(7)
        .any(|w| w == b" xmlns=" || w == b"\txmlns=" || w == b"\nxmlns=");
    match stanza.strip_prefix(b"<message") {
        Some(rest) if !declared => {
            out.extend_from_slice(b"<message xmlns='jabber:client'");
            out.extend_from_slice(rest);
        }
        _ => out.extend_from_slice(stanza),
    }
}

/// A retracted message as XEP-0424 describes it in an archive: who sent it
/// to whom, when it was retracted, and its origin-id; nothing of its
/// content.
fn tombstone(out: &mut Vec<u8>, owner: &str, m: &ArchivedMessage, at: u64) {
    let sender_bare = m.sender.split('/').next().unwrap_or("");
    let to = if sender_bare == owner {
        m.with.as_str()
    } else {
        owner
    };
    let mut msg = Element::new("message", ns::CLIENT)
        .with_attr("from", m.sender.clone())
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_child(
            Element::new("retracted", super::NS_RETRACT)
                .with_attr("stamp", crate::util::xmpp_datetime(at)),
        );
    if !m.origin_id.is_empty() {
        msg.set_attr("id", m.origin_id.clone());
        msg.push_child(Element::new("origin-id", ns::SID).with_attr("id", m.origin_id.clone()));
    }
    msg.write_to(out, NS_FORWARD);
}

/// Parses a XEP-0082 date-time (`2026-11-24T01:02:03Z`, optional fraction,
/// `Z` or `±hh:mm`) into Unix milliseconds; None if malformed or before 1970.
pub fn parse_datetime(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &frac[..digits];
        let padded = format!("{:0<3}", &f[..digits.min(3)]);
        ms = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = num_str(&rest[1..3])?;
            let om = num_str(&rest[4..6])?;
            let v = oh * 60 + om;
            if rest.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

fn num_str(t: &str) -> Option<i64> {
    if t.bytes().all(|c| c.is_ascii_digit()) {
        t.parse().ok()
    } else {
        None
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_datetime("2026-11-24T01:02:03.123Z"),
            Some(1_795_482_123_123)
        );
        assert_eq!(
            parse_datetime("2026-11-24T02:02:03.123+01:00"),
            parse_datetime("2026-11-24T01:02:03.123Z")
        );
        // Round trip with what the server writes.
        let t = 1_795_482_123_123;
        assert_eq!(parse_datetime(&crate::util::xmpp_datetime(t)), Some(t));
        for bad in [
            "",
            "yesterday",
            "2026-11-24",
            "2026-13-24T01:02:03Z",
            "2026-11-24T01:02:03",
            "2026-11-24T01:02:03.Z",
            "2026-11-24T01:02:03+0100",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn stored_stanza_gets_the_client_namespace() {
        let mut out = Vec::new();
        with_client_ns(&mut out, b"<message to='a@x'><body>hi</body></message>");
        assert_eq!(
            out,
            b"<message xmlns='jabber:client' to='a@x'><body>hi</body></message>"
        );
        out.clear();
        with_client_ns(&mut out, b"<message xmlns='jabber:client' to='a@x'/>");
        assert_eq!(out, b"<message xmlns='jabber:client' to='a@x'/>");
    }
}
