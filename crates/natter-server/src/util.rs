//! Small helpers: ids, timestamps, error stanzas.

use natter_xml::{escape_attr, escape_text, Stanza};
use rand::Rng;
use std::time::{SystemTime, UNIX_EPOCH};

/// A random URL-safe identifier (96 bits).
pub fn random_id() -> String {
    let bytes: [u8; 12] = rand::thread_rng().gen();
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// XEP-0082 date-time in UTC, e.g. `2026-11-23T18:31:24.123Z`.
pub fn xmpp_datetime(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let ms = unix_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// An `<iq type='error'>` answering `id`.
pub fn iq_error_bytes(
    id: &str,
    to: Option<&str>,
    kind: &str,
    condition: &str,
    text: Option<&str>,
) -> Vec<u8> {
    let mut out = b"<iq type='error' id='".to_vec();
    escape_attr(id, &mut out);
    out.push(b'\'');
    if let Some(to) = to {
        out.extend_from_slice(b" to='");
        escape_attr(to, &mut out);
        out.push(b'\'');
    }
    out.push(b'>');
    error_element(&mut out, kind, condition, text);
    out.extend_from_slice(b"</iq>");
    out
}

/// `<error type='kind'><condition/><text/></error>`.
pub fn error_element(out: &mut Vec<u8>, kind: &str, condition: &str, text: Option<&str>) {
    out.extend_from_slice(b"<error type='");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"'><");
    out.extend_from_slice(condition.as_bytes());
    out.extend_from_slice(b" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
    if let Some(t) = text {
        out.extend_from_slice(b"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>");
        escape_text(t, out);
        out.extend_from_slice(b"</text>");
    }
    out.extend_from_slice(b"</error>");
}

/// The error reply to `stanza` (RFC 6120 §8.3): same name and id, `from` the
/// entity that failed, `to` the sender, with the error condition.
pub fn bounce(
    stanza: &Stanza,
    sender: &str,
    failed_entity: &str,
    kind: &str,
    condition: &str,
    text: Option<&str>,
) -> Vec<u8> {
    let name = stanza.name();
    let mut out = Vec::with_capacity(200);
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" type='error' from='");
    escape_attr(failed_entity, &mut out);
    out.extend_from_slice(b"' to='");
    escape_attr(sender, &mut out);
    out.push(b'\'');
    if let Some(id) = stanza.id() {
        out.extend_from_slice(b" id='");
        escape_attr(&id, &mut out);
        out.push(b'\'');
    }
    out.push(b'>');
    error_element(&mut out, kind, condition, text);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime() {
        assert_eq!(xmpp_datetime(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(xmpp_datetime(1_795_458_684_123), "2026-11-23T18:31:24.123Z");
        assert_eq!(xmpp_datetime(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
