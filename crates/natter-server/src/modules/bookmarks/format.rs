//! The two bookmark formats and the conversion between them, with no I/O:
//! XEP-0402 items (`<conference xmlns='urn:xmpp:bookmarks:1' autojoin
//! name>` with `<nick/>`, `<password/>`, `<extensions/>`, one item per
//! room, the room's JID as item id) and the XEP-0048 list (`<storage
//! xmlns='storage:bookmarks'>` with `<conference jid autojoin name>`
//! children holding `<nick/>` and `<password/>`, and `<url/>` entries).
//!
//! Both carry a room's JID, name, autojoin, nick and password ([`Room`]).
//! The rest stays in its own format's copy: a XEP-0402 item's
//! `<extensions/>`; the XEP-0048 list's `<url/>` entries, any other child
//! of `<storage/>` and its attributes, and a `<conference/>`'s other
//! attributes and children.

use natter_xml::{Element, Node};
use std::collections::HashMap;

/// The XEP-0402 node and payload namespace.
pub const NS: &str = "urn:xmpp:bookmarks:1";
/// The XEP-0048 namespace: the `<storage/>` element, in private storage
/// and as the XEP-0223 node of that name.
pub const LEGACY_NS: &str = "storage:bookmarks";

/// What both formats say of one bookmarked room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Room {
    /// The room's bare JID.
    pub jid: String,
    pub name: Option<String>,
    pub autojoin: bool,
    pub nick: Option<String>,
    pub password: Option<String>,
}

/// Why a bookmark write is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The XEP-0402 item id is not a room's bare JID.
    ItemId(String),
    /// The payload is not a well-formed bookmark (or bookmark list).
    Payload(String),
}

/// Whether `jid` is a room's bare JID (a local part, a domain, no
/// resource), as XEP-0402 item ids and XEP-0048 `jid` attributes are.
fn room_jid(jid: &str) -> Result<(), String> {
    match jid::Jid::new(jid) {
        Ok(j) if j.node().is_some() && j.resource().is_none() => Ok(()),
        _ => Err(format!("'{jid}' is not a room's bare JID")),
    }
}

/// An xs:boolean (`true`, `false`, `1`, `0`).
fn boolean(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Non-whitespace text directly inside `el`.
fn has_text(el: &Element) -> bool {
    el.children
        .iter()
        .any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty()))
}

/// The text of a `<nick/>` or `<password/>` that must hold text only;
/// `None` when it was already given once.
fn text_only(el: &Element, seen: &Option<String>) -> Result<String, String> {
    if seen.is_some() {
        return Err(format!("<{}/> is given twice", el.name));
    }
    if el.elements().next().is_some() {
        return Err(format!("<{}/> holds text only", el.name));
    }
    Ok(el.text())
}

/// Reads a XEP-0402 item: `id` must be the room's bare JID and `payload`
/// a `<conference/>` as the XEP's schema says (attributes `name` and
/// `autojoin`; `<nick/>`, `<password/>` and `<extensions/>` at most once
/// each; elements of other namespaces only inside `<extensions/>`).
pub fn parse_item(id: &str, payload: &Element) -> Result<Room, Invalid> {
    room_jid(id).map_err(Invalid::ItemId)?;
    let bad = Invalid::Payload;
    if payload.name != "conference" || payload.ns != NS {
        return Err(bad(format!(
            "a bookmark is a <conference xmlns='{NS}'/>, not <{}/>",
            payload.name
        )));
    }
    let mut room = Room {
        jid: id.to_owned(),
        ..Room::default()
    };
    for (k, v) in &payload.attrs {
        match k.as_str() {
            "name" => room.name = Some(v.clone()),
            "autojoin" => {
                room.autojoin = boolean(v).ok_or_else(|| bad("'autojoin' is a boolean".into()))?;
            }
            _ => return Err(bad(format!("<conference/> has no attribute '{k}'"))),
        }
    }
    if has_text(payload) {
        return Err(bad("<conference/> holds elements only".into()));
    }
    let mut extensions = false;
    for el in payload.elements() {
        if el.ns != NS {
            return Err(bad(format!(
                "<{}/> of another namespace belongs inside <extensions/>",
                el.name
            )));
        }
        match el.name.as_str() {
            "nick" => room.nick = Some(text_only(el, &room.nick).map_err(bad)?),
            "password" => room.password = Some(text_only(el, &room.password).map_err(bad)?),
            "extensions" if !extensions => extensions = true,
            "extensions" => return Err(bad("<extensions/> is given twice".into())),
            other => return Err(bad(format!("<conference/> has no <{other}/>"))),
        }
    }
    Ok(room)
}

/// The `<extensions/>` of a XEP-0402 payload, if it has one.
pub fn extensions_of(payload: &Element) -> Option<&Element> {
    payload.get_child("extensions", NS)
}

/// The XEP-0402 payload for `room`, with `extensions` (kept from the
/// room's previous item).
pub fn item_payload(room: &Room, extensions: Option<&Element>) -> Element {
    let mut c = Element::new("conference", NS);
    if let Some(name) = &room.name {
        c.set_attr("name", name.clone());
    }
    if room.autojoin {
        c.set_attr("autojoin", "true");
    }
    if let Some(nick) = &room.nick {
        c.push_child(Element::new("nick", NS).with_text(nick.clone()));
    }
    if let Some(password) = &room.password {
        c.push_child(Element::new("password", NS).with_text(password.clone()));
    }
    if let Some(x) = extensions {
        c.push_child(x.clone());
    }
    c
}

/// The room a XEP-0048 `<conference/>` names, if `el` is one with a
/// room's bare JID. Strict: a bad `autojoin` or a doubled `<nick/>` or
/// `<password/>` is an error; otherwise those are read as best they can.
fn legacy_room(el: &Element, strict: bool) -> Result<Option<Room>, String> {
    if el.name != "conference" || el.ns != LEGACY_NS {
        return Ok(None);
    }
    let Some(jid) = el.attr("jid") else {
        return if strict {
            Err("a <conference/> needs the room's JID as 'jid'".into())
        } else {
            Ok(None)
        };
    };
    if let Err(e) = room_jid(jid) {
        return if strict { Err(e) } else { Ok(None) };
    }
    let mut room = Room {
        jid: jid.to_owned(),
        name: el.attr("name").map(str::to_owned),
        ..Room::default()
    };
    if let Some(a) = el.attr("autojoin") {
        match boolean(a) {
            Some(b) => room.autojoin = b,
            None if strict => return Err("'autojoin' is a boolean".into()),
            None => {}
        }
    }
    for c in el.elements().filter(|c| c.ns == LEGACY_NS) {
        let slot = match c.name.as_str() {
            "nick" => &mut room.nick,
            "password" => &mut room.password,
            _ => continue,
        };
        match text_only(c, slot) {
            Ok(t) => *slot = Some(t),
            Err(e) if strict => return Err(e),
            Err(_) => {}
        }
    }
    Ok(Some(room))
}

/// Reads a XEP-0048 list written by a client: its rooms, in order. Each
/// `<conference/>` needs a room's bare JID, a room is listed once; other
/// children (`<url/>`, …) are not looked at. At most `max_rooms`.
pub fn parse_legacy(storage: &Element, max_rooms: usize) -> Result<Vec<Room>, LegacyError> {
    if storage.name != "storage" || storage.ns != LEGACY_NS {
        return Err(LegacyError::Invalid(format!(
            "bookmarks are a <storage xmlns='{LEGACY_NS}'/>, not <{}/>",
            storage.name
        )));
    }
    if has_text(storage) {
        return Err(LegacyError::Invalid(
            "<storage/> holds elements only".into(),
        ));
    }
    let mut rooms: Vec<Room> = Vec::new();
    for el in storage.elements() {
        let Some(room) = legacy_room(el, true).map_err(LegacyError::Invalid)? else {
            continue;
        };
        if rooms.iter().any(|r| r.jid == room.jid) {
            return Err(LegacyError::Invalid(format!(
                "the room {} is listed twice",
                room.jid
            )));
        }
        rooms.push(room);
    }
    if rooms.len() > max_rooms {
        return Err(LegacyError::TooMany);
    }
    Ok(rooms)
}

/// Why a XEP-0048 list is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyError {
    Invalid(String),
    /// More rooms than an account may bookmark.
    TooMany,
}

/// The rooms of a stored XEP-0048 list, read leniently (a list stored
/// before natterd checked them): a `<conference/>` without a room's JID
/// is no room, and a room listed again is the first listing.
pub fn stored_legacy_rooms(storage: &Element) -> Vec<Room> {
    let mut rooms: Vec<Room> = Vec::new();
    for el in storage.elements() {
        if let Ok(Some(room)) = legacy_room(el, false) {
            if !rooms.iter().any(|r| r.jid == room.jid) {
                rooms.push(room);
            }
        }
    }
    rooms
}

/// The JID of a XEP-0048 `<conference/>` that names a room.
fn room_of(el: &Element) -> Option<&str> {
    match legacy_room(el, false) {
        Ok(Some(_)) => el.attr("jid"),
        _ => None,
    }
}

/// The XEP-0048 list for `rooms` (in that order), built on `base`, the
/// list as it was: its attributes and every child that is not a room's
/// `<conference/>` (`<url/>` entries and the like) stay, after the rooms;
/// a room's `<conference/>` keeps its other attributes and children.
pub fn legacy_list(rooms: &[Room], base: Option<&Element>) -> Element {
    let mut storage = Element::new("storage", LEGACY_NS);
    let mut before: HashMap<&str, &Element> = HashMap::new();
    if let Some(b) = base {
        storage.attrs = b.attrs.clone();
        for el in b.elements() {
            if let Some(jid) = room_of(el) {
                before.entry(jid).or_insert(el);
            }
        }
    }
    for room in rooms {
        storage.push_child(legacy_conference(room, before.get(room.jid.as_str())));
    }
    if let Some(b) = base {
        for el in b.elements().filter(|el| room_of(el).is_none()) {
            storage.push_child(el.clone());
        }
    }
    storage
}

/// One room's XEP-0048 `<conference/>`, keeping what `before` had that
/// XEP-0402 does not carry.
fn legacy_conference(room: &Room, before: Option<&&Element>) -> Element {
    let mut c = Element::new("conference", LEGACY_NS).with_attr("jid", room.jid.clone());
    if let Some(name) = &room.name {
        c.set_attr("name", name.clone());
    }
    if room.autojoin {
        c.set_attr("autojoin", "true");
    }
    let ours = ["jid", "name", "autojoin"];
    if let Some(b) = before {
        for (k, v) in b.attrs.iter().filter(|(k, _)| !ours.contains(&k.as_str())) {
            c.attrs.push((k.clone(), v.clone()));
        }
    }
    if let Some(nick) = &room.nick {
        c.push_child(Element::new("nick", LEGACY_NS).with_text(nick.clone()));
    }
    if let Some(password) = &room.password {
        c.push_child(Element::new("password", LEGACY_NS).with_text(password.clone()));
    }
    if let Some(b) = before {
        let carried = |e: &Element| e.ns == LEGACY_NS && (e.name == "nick" || e.name == "password");
        for e in b.elements().filter(|e| !carried(e)) {
            c.push_child(e.clone());
        }
    }
    c
}

/// One list from the two stored XEP-0048 copies, when an account's
/// bookmarks are first brought together: the private one, with the rooms
/// and other entries only the PEP one has added after them.
pub fn merge_legacy(private: Option<Element>, pep: Option<Element>) -> Option<Element> {
    let (mut base, other) = match (private, pep) {
        (Some(p), Some(o)) => (p, o),
        (one, None) | (None, one) => return one,
    };
    let rooms: Vec<String> = stored_legacy_rooms(&base)
        .into_iter()
        .map(|r| r.jid)
        .collect();
    for el in other.elements() {
        let add = match room_of(el) {
            Some(jid) => !rooms.iter().any(|r| r == jid),
            None => !base.elements().any(|b| b == el),
        };
        if add {
            base.push_child(el.clone());
        }
    }
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_xml::Stanza;

    fn el(xml: &str) -> Element {
        Stanza::parse(xml.as_bytes(), "")
            .unwrap()
            .element()
            .unwrap()
    }

    fn room(jid: &str, name: Option<&str>, autojoin: bool, nick: Option<&str>) -> Room {
        Room {
            jid: jid.into(),
            name: name.map(Into::into),
            autojoin,
            nick: nick.map(Into::into),
            password: None,
        }
    }

    #[test]
    fn items_are_read_as_the_schema_says() {
        let p = el("<conference xmlns='urn:xmpp:bookmarks:1' name='Play' autojoin='1'><nick>JC</nick><password>pw</password><extensions><x xmlns='urn:example'/></extensions></conference>");
        let r = parse_item("play@conf.example", &p).unwrap();
        let mut want = room("play@conf.example", Some("Play"), true, Some("JC"));
        want.password = Some("pw".into());
        assert_eq!(r, want);
        assert!(extensions_of(&p).is_some());
        let bare = el("<conference xmlns='urn:xmpp:bookmarks:1'/>");
        assert_eq!(
            parse_item("r@c.example", &bare).unwrap(),
            room("r@c.example", None, false, None)
        );
        for id in ["", "conf.example", "r@c.example/res", "a@@b"] {
            assert!(
                matches!(parse_item(id, &bare), Err(Invalid::ItemId(_))),
                "{id}"
            );
        }
        for xml in [
            "<conference xmlns='storage:bookmarks'/>",
            "<storage xmlns='urn:xmpp:bookmarks:1'/>",
            "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='yes'/>",
            "<conference xmlns='urn:xmpp:bookmarks:1' jid='r@c.example'/>",
            "<conference xmlns='urn:xmpp:bookmarks:1'><nick>a</nick><nick>b</nick></conference>",
            "<conference xmlns='urn:xmpp:bookmarks:1'><nick><b/></nick></conference>",
            "<conference xmlns='urn:xmpp:bookmarks:1'><x xmlns='urn:example'/></conference>",
            "<conference xmlns='urn:xmpp:bookmarks:1'><url/></conference>",
            "<conference xmlns='urn:xmpp:bookmarks:1'><extensions/><extensions/></conference>",
            "<conference xmlns='urn:xmpp:bookmarks:1'>text</conference>",
        ] {
            let r = parse_item("r@c.example", &el(xml));
            assert!(matches!(r, Err(Invalid::Payload(_))), "{xml}: {r:?}");
        }
    }

    #[test]
    fn payloads_round_trip() {
        let x = el("<extensions xmlns='urn:xmpp:bookmarks:1'><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions>");
        let mut r = room("r@c.example", Some("R & D"), true, Some("me"));
        r.password = Some("".into());
        let p = item_payload(&r, Some(&x));
        assert_eq!(parse_item("r@c.example", &p).unwrap(), r);
        assert_eq!(extensions_of(&p), Some(&x));
    }

    #[test]
    fn legacy_lists_written_by_clients_are_checked() {
        let ok = el("<storage xmlns='storage:bookmarks'><conference jid='a@c.example' autojoin='true' name='A' minimize='1'><nick>n</nick><print_status>x</print_status></conference><url name='u' url='https://example.org/'/><conference jid='b@c.example'/></storage>");
        assert_eq!(
            parse_legacy(&ok, 10).unwrap(),
            vec![
                room("a@c.example", Some("A"), true, Some("n")),
                room("b@c.example", None, false, None)
            ]
        );
        assert_eq!(parse_legacy(&ok, 1), Err(LegacyError::TooMany));
        for xml in [
            "<storage xmlns='urn:xmpp:bookmarks:1'/>",
            "<storage xmlns='storage:bookmarks'><conference/></storage>",
            "<storage xmlns='storage:bookmarks'><conference jid='nope'/></storage>",
            "<storage xmlns='storage:bookmarks'><conference jid='a@c.example' autojoin='maybe'/></storage>",
            "<storage xmlns='storage:bookmarks'><conference jid='a@c.example'/><conference jid='a@c.example'/></storage>",
            "<storage xmlns='storage:bookmarks'><conference jid='a@c.example'><nick/><nick/></conference></storage>",
            "<storage xmlns='storage:bookmarks'>text</storage>",
        ] {
            assert!(matches!(parse_legacy(&el(xml), 10), Err(LegacyError::Invalid(_))), "{xml}");
        }
        // Stored lists are read as they can be.
        let stored = el("<storage xmlns='storage:bookmarks'><conference jid='a@c.example' autojoin='maybe'/><conference/><conference jid='a@c.example' name='again'/></storage>");
        assert_eq!(
            stored_legacy_rooms(&stored),
            vec![room("a@c.example", None, false, None)]
        );
    }

    #[test]
    fn legacy_lists_keep_what_xep_0402_cannot_carry() {
        let base = el("<storage xmlns='storage:bookmarks' x='1'><conference jid='a@c.example' name='old' minimize='1'><nick>old</nick><print_status>x</print_status></conference><url name='u' url='https://example.org/'/><conference jid='gone@c.example'/><conference name='no jid'/></storage>");
        let rooms = [
            room("b@c.example", None, true, None),
            room("a@c.example", Some("new"), false, Some("me")),
        ];
        let got = String::from_utf8(legacy_list(&rooms, Some(&base)).to_bytes("")).unwrap();
        assert_eq!(
            got,
            "<storage xmlns='storage:bookmarks' x='1'>\
             <conference jid='b@c.example' autojoin='true'/>\
             <conference jid='a@c.example' name='new' minimize='1'><nick>me</nick><print_status>x</print_status></conference>\
             <url name='u' url='https://example.org/'/><conference name='no jid'/></storage>"
        );
        let empty = String::from_utf8(legacy_list(&[], None).to_bytes("")).unwrap();
        assert_eq!(empty, "<storage xmlns='storage:bookmarks'/>");
    }

    #[test]
    fn the_two_stored_copies_merge() {
        let private = el("<storage xmlns='storage:bookmarks'><conference jid='a@c.example' name='private'/><url url='u1'/></storage>");
        let pep = el("<storage xmlns='storage:bookmarks'><conference jid='a@c.example' name='pep'/><conference jid='b@c.example'/><url url='u1'/><url url='u2'/></storage>");
        let m = merge_legacy(Some(private.clone()), Some(pep.clone())).unwrap();
        assert_eq!(
            String::from_utf8(m.to_bytes("")).unwrap(),
            "<storage xmlns='storage:bookmarks'><conference jid='a@c.example' name='private'/><url url='u1'/><conference jid='b@c.example'/><url url='u2'/></storage>"
        );
        assert_eq!(merge_legacy(None, Some(pep.clone())), Some(pep));
        assert_eq!(merge_legacy(Some(private.clone()), None), Some(private));
        assert_eq!(merge_legacy(None, None), None);
    }
}
