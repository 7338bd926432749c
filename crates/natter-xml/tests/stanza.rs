use natter_xml::{escape_attr, Element, Node, Stanza, NS_CLIENT, NS_STREAMS};

fn s(b: &str) -> Stanza {
    Stanza::parse(b.as_bytes(), NS_CLIENT).unwrap_or_else(|e| panic!("{e} for {b}"))
}

fn rw(
    st: &Stanza,
    from: Option<&str>,
    to: Option<&str>,
    remove: &[usize],
    append: &[u8],
) -> String {
    let out = st.rewrite(from, to, remove, append);
    // always re-parseable
    Stanza::parse(&out, NS_CLIENT)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    String::from_utf8(out).unwrap()
}

#[test]
fn parse_envelope() {
    let m = s(
        "  <message from='a@b/c' to=\"d@e\" type='chat' id='x&amp;y' foo='bar'>\
               <body>hi</body><thread>t</thread><x xmlns='urn:x' a='1'/></message>\n",
    );
    assert_eq!(m.bytes().first(), Some(&b'<'));
    assert_eq!(m.bytes().last(), Some(&b'>'));
    assert_eq!(m.name(), "message");
    assert_eq!(m.ns(), NS_CLIENT);
    assert_eq!(m.from().as_deref(), Some("a@b/c"));
    assert_eq!(m.to().as_deref(), Some("d@e"));
    assert_eq!(m.stanza_type().as_deref(), Some("chat"));
    assert_eq!(m.id().as_deref(), Some("x&y"));
    assert_eq!(m.attr("foo").as_deref(), Some("bar"));
    assert_eq!(m.attr("id").as_deref(), Some("x&y"));
    assert!(m.attr("nope").is_none());
    assert_eq!(m.children().len(), 3);
    assert!(m.has_child("thread", NS_CLIENT));
    assert!(!m.has_child("thread", "urn:x"));
    let x = m.child("x", "urn:x").unwrap();
    assert_eq!(x.bytes(&m), b"<x xmlns='urn:x' a='1'/>");
    assert_eq!(x.attr(&m, "a").as_deref(), Some("1"));
    assert!(x.attr(&m, "b").is_none());
    assert_eq!(m.children()[0].attr(&m, "a"), None);
    assert_eq!(
        m.inner_bytes(),
        b"<body>hi</body><thread>t</thread><x xmlns='urn:x' a='1'/>"
    );
    assert!(!m.is_self_closing());
    let bytes = m.clone().into_bytes();
    assert_eq!(bytes, m.bytes());

    let p = Stanza::parse(b"<stream:features/>", "jabber:server").unwrap();
    assert_eq!((p.name(), p.ns()), ("features", NS_STREAMS));
    let p = Stanza::parse(b"<presence/>", "urn:custom").unwrap();
    assert_eq!(p.ns(), "urn:custom");
    assert_eq!(p.element().unwrap().ns, "urn:custom");
}

#[test]
fn parse_errors() {
    for (b, cond) in [
        ("", "bad-format"),
        ("<message>", "bad-format"),
        ("<message/><message/>", "not-well-formed"),
        ("<message/>x", "not-well-formed"),
        ("x<message/>", "not-well-formed"),
        ("</message>", "not-well-formed"),
        ("<!-- x --><message/>", "restricted-xml"),
        ("<message><a></message>", "not-well-formed"),
        ("<p:message/>", "not-well-formed"),
    ] {
        let e = Stanza::parse(b.as_bytes(), NS_CLIENT).unwrap_err();
        assert_eq!(e.condition(), cond, "{b}: {e}");
    }
}

#[test]
fn rewrite_insert_from() {
    let m = s("<message/>");
    assert_eq!(
        rw(&m, Some("a@b/c"), None, &[], b""),
        "<message from='a@b/c'/>"
    );
    assert_eq!(
        rw(&m, Some("a@b/c"), Some("d@e"), &[], b""),
        "<message from='a@b/c' to='d@e'/>"
    );
    assert_eq!(rw(&m, None, None, &[], b""), "<message/>");
    let m = s("<message to='x'>hi</message>");
    assert_eq!(
        rw(&m, Some("a@b"), None, &[], b""),
        "<message from='a@b' to='x'>hi</message>"
    );
}

#[test]
fn rewrite_replace_from_with_escaping() {
    let m = s("<message to=\"d@e\" from=\"evil@x\" id='1'><body/></message>");
    assert_eq!(
        rw(&m, Some("o'b<r>&\"x"), None, &[], b""),
        "<message to=\"d@e\" from=\"o&apos;b&lt;r&gt;&amp;&quot;x\" id='1'><body/></message>"
    );
    let out = m.rewrite(Some("o'b<r>&\"x"), Some("t@t"), &[], b"");
    let p = Stanza::parse(&out, NS_CLIENT).unwrap();
    assert_eq!(p.from().as_deref(), Some("o'b<r>&\"x"));
    assert_eq!(p.to().as_deref(), Some("t@t"));
    assert_eq!(p.id().as_deref(), Some("1"));
    // replace both, to before from in the source
    assert_eq!(
        rw(&m, Some("f"), Some("t"), &[], b""),
        "<message to=\"t\" from=\"f\" id='1'><body/></message>"
    );
}

#[test]
fn rewrite_remove_children() {
    let m =
        s("<message><body>a</body> <x xmlns='urn:x'/><delay xmlns='urn:xmpp:delay'/></message>");
    assert_eq!(
        rw(&m, None, None, &[1], b""),
        "<message><body>a</body> <delay xmlns='urn:xmpp:delay'/></message>"
    );
    assert_eq!(
        rw(&m, None, None, &[0, 2, 2, 99], b""),
        "<message> <x xmlns='urn:x'/></message>"
    );
    assert_eq!(
        rw(&m, Some("f"), None, &[0, 1, 2], b"<y/>"),
        "<message from='f'> <y/></message>"
    );
}

#[test]
fn rewrite_append() {
    let m = s("<message to='a'/>");
    assert_eq!(
        rw(
            &m,
            None,
            None,
            &[],
            b"<stanza-id xmlns='urn:xmpp:sid:0' by='a' id='1'/>"
        ),
        "<message to='a'><stanza-id xmlns='urn:xmpp:sid:0' by='a' id='1'/></message>"
    );
    let m = s("<message to='a' />");
    assert_eq!(
        rw(&m, Some("b"), None, &[], b"<x/>"),
        "<message from='b' to='a' ><x/></message>"
    );
    let m = Stanza::parse(
        b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>",
        NS_CLIENT,
    )
    .unwrap();
    assert_eq!(
        rw(&m, None, None, &[], b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"),
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
    );
    let m = s("<iq type='result'><q/></iq >");
    assert_eq!(
        rw(&m, None, None, &[], b"<r/>"),
        "<iq type='result'><q/><r/></iq >"
    );
}

#[test]
fn element_round_trip() {
    let e = Element::new("message", NS_CLIENT)
        .with_attr("to", "juliet@example.com")
        .with_attr("from", "ro'meo\"&<>@example.net\t\n")
        .with_attr("xml:lang", "en")
        .with_attr("{urn:ext}flag", "1")
        .with_child(Element::new("body", NS_CLIENT).with_text("a < b & c > d ]]> \r\n é 😀"))
        .with_child(Element::new(
            "active",
            "http://jabber.org/protocol/chatstates",
        ))
        .with_child(
            Element::new("x", "jabber:x:data")
                .with_attr("type", "form")
                .with_child(
                    Element::new("field", "jabber:x:data")
                        .with_attr("var", "v")
                        .with_text("1"),
                )
                .with_child(Element::new("nons", "")),
        )
        .with_text("tail");
    let bytes = e.to_bytes(NS_CLIENT);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with("<message to='juliet@example.com'"),
        "{text}"
    );
    assert!(
        !text.starts_with("<message xmlns"),
        "no xmlns on the top element: {text}"
    );
    assert!(text.contains("<nons xmlns=''/>"), "{text}");
    let st = Stanza::parse(&bytes, NS_CLIENT).unwrap();
    assert_eq!(st.element().unwrap(), e);
    assert_eq!(Stanza::from_element(&e, NS_CLIENT).unwrap(), st);
    // in another context the namespace is declared
    let other = e.to_bytes("jabber:server");
    assert!(other.starts_with(b"<message xmlns='jabber:client'"));
    assert_eq!(
        Stanza::parse(&other, "jabber:server")
            .unwrap()
            .element()
            .unwrap(),
        e
    );
    // rewrite result still round trips
    let out = st.rewrite(Some("a@b/c"), None, &[1], b"<y xmlns='urn:y'/>");
    let el = Stanza::parse(&out, NS_CLIENT).unwrap().element().unwrap();
    assert_eq!(el.attr("from"), Some("a@b/c"));
    assert!(el
        .get_child("active", "http://jabber.org/protocol/chatstates")
        .is_none());
    assert!(el.get_child("y", "urn:y").is_some());
}

#[test]
fn element_api() {
    let mut e = Element::new("iq", NS_CLIENT).with_attr("type", "get");
    e.set_attr("type", "set");
    e.set_attr("id", "1");
    assert_eq!(e.attr("type"), Some("set"));
    assert_eq!(e.attrs.len(), 2);
    e.push_child(Element::new("query", "jabber:iq:roster"));
    e.push_text("a");
    e.push_text("b");
    e.push_text("");
    assert_eq!(e.text(), "ab");
    assert_eq!(e.children.len(), 2);
    assert!(matches!(&e.children[1], Node::Text(t) if t == "ab"));
    assert_eq!(e.elements().count(), 1);
    assert!(e.get_child("query", "jabber:iq:roster").is_some());
    assert!(e.get_child("query", NS_CLIENT).is_none());
    e.get_child_mut("query", "jabber:iq:roster")
        .unwrap()
        .set_attr("ver", "1");
    assert_eq!(e.remove_attr("id").as_deref(), Some("1"));
    assert_eq!(
        String::from_utf8(e.to_bytes(NS_CLIENT)).unwrap(),
        "<iq type='set'><query xmlns='jabber:iq:roster' ver='1'/>ab</iq>"
    );
    let mut out = Vec::new();
    escape_attr("x", &mut out);
    assert_eq!(out, b"x");
}

#[test]
fn element_from_parse_details() {
    let st = s("<message xmlns:a='urn:a'><a:x a:k='v' k='w'/><![CDATA[c1]]>t&amp;<![CDATA[c2]]>\r\n</message>");
    let e = st.element().unwrap();
    assert_eq!(e.text(), "c1t&c2\n");
    assert_eq!(e.children.len(), 2);
    let x = e.get_child("x", "urn:a").unwrap();
    assert_eq!(
        x.attrs,
        vec![
            ("{urn:a}k".to_string(), "v".to_string()),
            ("k".to_string(), "w".to_string())
        ]
    );
    // serialising again and parsing gives the same tree
    let again = Stanza::parse(&e.to_bytes(NS_CLIENT), NS_CLIENT)
        .unwrap()
        .element()
        .unwrap();
    assert_eq!(again, e);
}

#[test]
fn parse_limits() {
    use natter_xml::{Limits, PARSE_MAX_DEPTH};
    let attrs: String = (0..100).map(|i| format!(" a{i}='v'")).collect();
    let many = format!("<message{attrs}/>");
    let st = Stanza::parse(many.as_bytes(), NS_CLIENT).unwrap();
    Stanza::parse(&st.rewrite(Some("f"), Some("t"), &[], b"<x/>"), NS_CLIENT).unwrap();
    let lim = Limits::default();
    let e = Stanza::parse_with_limits(many.as_bytes(), NS_CLIENT, &lim).unwrap_err();
    assert_eq!(e.condition(), "policy-violation");
    let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    Stanza::parse(deep(PARSE_MAX_DEPTH).as_bytes(), NS_CLIENT)
        .unwrap()
        .element()
        .unwrap();
    assert_eq!(
        Stanza::parse(deep(PARSE_MAX_DEPTH + 1).as_bytes(), NS_CLIENT)
            .unwrap_err()
            .condition(),
        "policy-violation"
    );
    let small = Limits {
        max_stanza_bytes: 10,
        ..Limits::default()
    };
    assert!(Stanza::parse_with_limits(b"<message/>", NS_CLIENT, &small).is_ok());
    assert!(Stanza::parse_with_limits(b"<message />", NS_CLIENT, &small).is_err());
}
