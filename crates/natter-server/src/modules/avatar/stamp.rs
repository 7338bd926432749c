//! The avatar hash in available presence (XEP-0398 §4, XEP-0153 §4.1):
//! the server writes `<x xmlns='vcard-temp:x:update'><photo>HASH</photo>
//! </x>` on its users' behalf. Pure: the caller knows the hash.

use super::image::{hex, Hash};
use super::NS_UPDATE;
use natter_xml::Stanza;

/// The presence with `from` set and the avatar hash stamped (`hash` None:
/// the account has no avatar, an empty `<photo/>`).
///
/// As XEP-0398 §4 says, a presence whose client put an empty `<photo/>`
/// there (it advertises no avatar) is left as it is; any other
/// `vcard-temp:x:update` element — empty, or with a hash that may be stale
/// — is replaced by the server's.
pub fn stamped(st: &Stanza, from: &str, hash: Option<&Hash>) -> Vec<u8> {
    let updates: Vec<usize> = st
        .children()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name == "x" && c.ns == NS_UPDATE)
        .map(|(i, _)| i)
        .collect();
    if !updates.is_empty() && keeps_empty_photo(st) {
        return st.rewrite(Some(from), None, &[], b"");
    }
    st.rewrite(Some(from), None, &updates, &update_element(hash))
}

/// `<x xmlns='vcard-temp:x:update'><photo>HASH</photo></x>`.
pub fn update_element(hash: Option<&Hash>) -> Vec<u8> {
    let mut out = Vec::with_capacity(90);
    out.extend_from_slice(b"<x xmlns='");
    out.extend_from_slice(NS_UPDATE.as_bytes());
    match hash {
        Some(h) => {
            out.extend_from_slice(b"'><photo>");
            out.extend_from_slice(hex(h).as_bytes());
            out.extend_from_slice(b"</photo></x>");
        }
        None => out.extend_from_slice(b"'><photo/></x>"),
    }
    out
}

/// Whether the client's `vcard-temp:x:update` holds an empty `<photo/>`.
fn keeps_empty_photo(st: &Stanza) -> bool {
    let Ok(el) = st.element() else {
        return false;
    };
    let empty = el
        .elements()
        .filter(|x| x.name == "x" && x.ns == NS_UPDATE)
        .any(|x| {
            x.get_child("photo", NS_UPDATE)
                .is_some_and(|p| p.text().trim().is_empty())
        });
    empty
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Hash = [0xab; 20];

    fn stamp(presence: &str, hash: Option<&Hash>) -> String {
        let st = Stanza::parse(presence.as_bytes(), "jabber:client").unwrap();
        String::from_utf8(stamped(&st, "a@x/r", hash)).unwrap()
    }

    fn x(photo: &str) -> String {
        format!("<x xmlns='vcard-temp:x:update'>{photo}</x>")
    }

    #[test]
    fn the_hash_is_added() {
        let h = hex(&H);
        assert_eq!(
            stamp("<presence/>", Some(&H)),
            format!(
                "<presence from='a@x/r'>{}</presence>",
                x(&format!("<photo>{h}</photo>"))
            )
        );
        assert_eq!(
            stamp("<presence><show>away</show></presence>", None),
            format!(
                "<presence from='a@x/r'><show>away</show>{}</presence>",
                x("<photo/>")
            )
        );
    }

    #[test]
    fn a_stale_hash_or_an_empty_update_is_replaced() {
        let h = hex(&H);
        let want = format!(
            "<presence from='a@x/r'><status>s</status>{}</presence>",
            x(&format!("<photo>{h}</photo>"))
        );
        let stale = format!(
            "<presence><status>s</status>{}</presence>",
            x("<photo>0123</photo>")
        );
        assert_eq!(stamp(&stale, Some(&H)), want);
        let empty = format!("<presence><status>s</status>{}</presence>", x(""));
        assert_eq!(stamp(&empty, Some(&H)), want);
        // Prefixed, and twice: all go, one comes.
        let odd = "<presence><u:x xmlns:u='vcard-temp:x:update'><u:photo>00</u:photo></u:x><status>s</status><x xmlns='vcard-temp:x:update'/></presence>";
        assert_eq!(stamp(odd, Some(&H)), want);
    }

    #[test]
    fn an_empty_photo_of_the_client_is_kept() {
        let p = format!("<presence>{}</presence>", x("<photo/>"));
        assert_eq!(
            stamp(&p, Some(&H)),
            format!("<presence from='a@x/r'>{}</presence>", x("<photo/>"))
        );
    }
}
