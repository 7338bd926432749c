mod common;

use common::*;
use natter_xml::{Event, Limits, StreamHeader, NS_CLIENT, NS_STREAMS};

#[test]
fn realistic_stream() {
    let input = b"<?xml version='1.0' encoding='UTF-8'?>\n\
        <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
        to='example.com' from='juliet@example.com' version='1.0' xml:lang='en' id='s&amp;1'>\n  \
        <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> \r\n\t\
        <iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>x</resource></bind></iq>\n \n\
        <message to='romeo@example.net' type='chat' id='m&lt;1' xml:lang='en'>\
          <body>Wherefore art thou, Romeo? \xE2\x9C\x93 &#x1F600; &amp; <![CDATA[<raw> & stuff]]></body>\
          <active xmlns='http://jabber.org/protocol/chatstates'/>\
          <x:data xmlns:x='jabber:x:data' type='form'><x:field var='a'/></x:data>\
          <stanza-id xmlns='urn:xmpp:sid:0' by='example.com' id='abc'/>\
        </message>   <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>\
        \n</stream:stream>";
    let (events, err) = run_all_ways(input, Limits::default());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.len(), 6);
    let Event::StreamOpen(h) = &events[0] else {
        panic!()
    };
    assert_eq!(
        *h,
        StreamHeader {
            to: Some("example.com".into()),
            from: Some("juliet@example.com".into()),
            id: Some("s&1".into()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            default_ns: NS_CLIENT.into(),
        }
    );
    let Event::Stanza(tls) = &events[1] else {
        panic!()
    };
    assert_eq!(
        (tls.name(), tls.ns()),
        ("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
    );
    assert_eq!(
        tls.bytes(),
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert!(tls.children().is_empty());

    let Event::Stanza(iq) = &events[2] else {
        panic!()
    };
    assert_eq!((iq.name(), iq.ns()), ("iq", NS_CLIENT));
    assert_eq!(iq.stanza_type().as_deref(), Some("set"));
    assert_eq!(iq.id().as_deref(), Some("b1"));
    assert!(iq.to().is_none() && iq.from().is_none());
    assert_eq!(iq.children().len(), 1);
    let bind = iq
        .child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
        .unwrap();
    assert_eq!(
        &iq.bytes()[bind.span.clone()],
        b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>x</resource></bind>"
    );
    let tree = iq.element().unwrap();
    let res = tree
        .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
        .unwrap();
    assert_eq!(
        res.get_child("resource", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .text(),
        "x"
    );

    let Event::Stanza(m) = &events[3] else {
        panic!()
    };
    assert_eq!(m.name(), "message");
    assert_eq!(m.id().as_deref(), Some("m<1"));
    assert_eq!(
        m.attr("xml:lang").as_deref(),
        Some("en"),
        "a qualified name matches literally"
    );
    assert_eq!(m.attr("type").as_deref(), Some("chat"));
    let names: Vec<_> = m
        .children()
        .iter()
        .map(|c| (c.name.as_str(), c.ns.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("body", NS_CLIENT),
            ("active", "http://jabber.org/protocol/chatstates"),
            ("data", "jabber:x:data"),
            ("stanza-id", "urn:xmpp:sid:0")
        ]
    );
    let sid = m.child("stanza-id", "urn:xmpp:sid:0").unwrap();
    assert_eq!(sid.attr(m, "by").as_deref(), Some("example.com"));
    assert_eq!(sid.attr(m, "id").as_deref(), Some("abc"));
    assert_eq!(m.children()[2].attr(m, "type").as_deref(), Some("form"));
    let el = m.element().unwrap();
    assert_eq!(
        el.get_child("body", NS_CLIENT).unwrap().text(),
        "Wherefore art thou, Romeo? ✓ 😀 & <raw> & stuff"
    );
    assert_eq!(el.attr("xml:lang"), Some("en"));

    let Event::Stanza(f) = &events[4] else {
        panic!()
    };
    assert_eq!((f.name(), f.ns()), ("features", NS_STREAMS));
    assert!(f.has_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"));
    assert_eq!(events[5], Event::StreamClose);
}

#[test]
fn bom_and_minimal_header() {
    let (events, err) = run_all_ways(
        b"\xEF\xBB\xBF<stream xmlns='http://etherx.jabber.org/streams'><a/></stream>",
        Limits::default(),
    );
    assert!(err.is_none());
    let Event::StreamOpen(h) = &events[0] else {
        panic!()
    };
    assert_eq!(h.default_ns, NS_STREAMS);
    assert_eq!(events.len(), 3);
    // other prefix for the streams namespace
    let (events, err) =
        run_all_ways(b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server'>\n<s:error/></s:stream>", Limits::default());
    assert!(err.is_none(), "{err:?}");
    let Event::Stanza(s) = &events[1] else {
        panic!()
    };
    assert_eq!((s.name(), s.ns()), ("error", NS_STREAMS));
    assert_eq!(events[2], Event::StreamClose);
    // self-closing header: open then close
    let (events, err) = run_all_ways(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
        Limits::default(),
    );
    assert!(err.is_none());
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], Event::StreamClose);
}

#[test]
fn prolog_errors() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>",
            "unsupported-encoding",
        ),
        (
            b"<?xml version='1.0'?><?xml version='1.0'?>",
            "restricted-xml",
        ),
        (b"<?php echo ?>", "restricted-xml"),
        (b"<!DOCTYPE stream>", "restricted-xml"),
        (b"<!-- hi -->", "restricted-xml"),
        (b"hello", "not-well-formed"),
        (b"</stream:stream>", "not-well-formed"),
        (b"\xFE\xFF\x00<", "unsupported-encoding"),
        (b"\x00<\x00s", "unsupported-encoding"),
        (b"\xEF\xBB<", "not-well-formed"),
        (
            b"<stream:stream xmlns:stream='urn:wrong'>",
            "invalid-namespace",
        ),
        (
            b"<stream:strem xmlns:stream='http://etherx.jabber.org/streams'>",
            "invalid-namespace",
        ),
        (b"<stream xmlns='jabber:client'>", "invalid-namespace"),
        (b"<stream:stream>", "not-well-formed"),
        (
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='a' to='b'>",
            "not-well-formed",
        ),
        (
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='\xC3'>",
            "unsupported-encoding",
        ),
        (
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='<'>",
            "not-well-formed",
        ),
        (
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='&foo;'>",
            "restricted-xml",
        ),
        (
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to=a>",
            "not-well-formed",
        ),
    ];
    for (input, cond) in cases {
        let (_, err) = run_all_ways(input, Limits::default());
        assert_eq!(
            err.map(|e| e.condition()),
            Some(*cond),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn header_too_large() {
    let limits = Limits {
        max_header_bytes: 100,
        ..Limits::default()
    };
    let mut input = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='".to_vec();
    input.extend_from_slice(&[b'a'; 200]);
    // no closing quote/bracket: must fail as soon as the limit is passed
    let (_, err) = run_all_ways(&input, limits);
    assert_eq!(err.unwrap().condition(), "policy-violation");
    let (_, err) = run_all_ways(&[b' '; 10_000], limits);
    assert!(err.is_none(), "whitespace is consumed, not buffered");
    let mut decl = b"<?xml version='1.0'".to_vec();
    decl.extend_from_slice(&[b' '; 200]);
    let (_, err) = run_all_ways(&decl, limits);
    assert_eq!(err.unwrap().condition(), "policy-violation");
}

#[test]
fn close_must_match() {
    expect_condition(b"</stream>", "not-well-formed");
    expect_condition(b"</stream:stream junk>", "not-well-formed");
    let (events, err) = run_body(b" </stream:stream >");
    assert!(err.is_none());
    assert_eq!(events.last(), Some(&Event::StreamClose));
}

#[test]
fn keepalives_and_text() {
    let s = expect_ok(b" \n\t\r <presence/>  \n ");
    assert_eq!(s.len(), 1);
    expect_condition(b" x <presence/>", "not-well-formed");
    expect_condition(b"&#32;", "not-well-formed");
    expect_condition(b"<![CDATA[x]]>", "not-well-formed");
}

#[test]
fn restricted() {
    expect_condition(b"<!-- c -->", "restricted-xml");
    expect_condition(b"<?pi x?>", "restricted-xml");
    expect_condition(b"<message><!-- c --></message>", "restricted-xml");
    expect_condition(b"<message><?pi x?></message>", "restricted-xml");
    expect_condition(b"<message><!DOCTYPE x></message>", "restricted-xml");
    expect_condition(b"<message><![INCLUDE[x]]></message>", "restricted-xml");
    expect_condition(b"<message><body>&nbsp;</body></message>", "restricted-xml");
    expect_condition(b"<message to='&foo;'/>", "restricted-xml");
    let s = expect_ok(b"<message><body><![CDATA[a<b>&c]]]]></body></message>");
    assert_eq!(
        s[0].element()
            .unwrap()
            .get_child("body", NS_CLIENT)
            .unwrap()
            .text(),
        "a<b>&c]]"
    );
}

#[test]
fn not_well_formed() {
    for body in [
        &b"<message><body>a</message>"[..],
        b"<message></body></message>",
        b"<message to='a' to='b'/>",
        b"<message xmlns:a='x' xmlns:b='x' a:t='1' b:t='2'/>",
        b"<message to='a'from='b'/>",
        b"<message to=a/>",
        b"<message to/>",
        b"<message to='<'/>",
        b"<message to='a&b'/>",
        b"<message><body>a & b</body></message>",
        b"<message><body>&#0;</body></message>",
        b"<message><body>&#x1;</body></message>",
        b"<message><body>&#xFFFE;</body></message>",
        b"<message><body>&#xD800;</body></message>",
        b"<message><body>&#xzz;</body></message>",
        b"<message><body>&amp</body></message>",
        b"<message><body>\x01</body></message>",
        b"<message><body>\x0B\x0C</body></message>",
        b"<message><body>\xEF\xBF\xBE</body></message>",
        b"<message><body>\xEF\xBF\xBF</body></message>",
        b"<message><body>]]></body></message>",
        b"<message to='\x1F'/>",
        b"<1message/>",
        b"<message><-body/></message>",
        b"<a:message/>",
        b"<message><a:b/></message>",
        b"<message a:t='1'/>",
        b"<message xmlns:a=''/>",
        b"<message xmlns:xmlns='x'/>",
        b"<message xmlns:xml='urn:other'/>",
        b"<message xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
        b"<xmlns:message/>",
        b"<a:b:c xmlns:a='x'/>",
        b"<:a/>",
        b"<message <body/>",
        b"<message / >",
        b"</message>",
        b"<message></message >x<",
    ] {
        expect_condition(body, "not-well-formed");
    }
}

#[test]
fn namespaces() {
    let s = expect_ok(
        b"<message xmlns:a='urn:a' a:x='1' x='2'>\
          <a:c/><d xmlns='urn:d'><e/></d><f xmlns=''/><g xml:lang='en'/>\
          <stream:error/><h xmlns:a='urn:other'><a:i/></h></message>",
    );
    let m = &s[0];
    let c: Vec<_> = m
        .children()
        .iter()
        .map(|c| (c.name.as_str(), c.ns.as_str()))
        .collect();
    assert_eq!(
        c,
        [
            ("c", "urn:a"),
            ("d", "urn:d"),
            ("f", ""),
            ("g", NS_CLIENT),
            ("error", NS_STREAMS),
            ("h", NS_CLIENT)
        ]
    );
    let el = m.element().unwrap();
    assert_eq!(el.attr("{urn:a}x"), Some("1"));
    assert_eq!(el.attr("x"), Some("2"));
    assert_eq!(
        el.get_child("d", "urn:d")
            .unwrap()
            .get_child("e", "urn:d")
            .map(|e| e.name.as_str()),
        Some("e")
    );
    assert!(el
        .get_child("h", NS_CLIENT)
        .unwrap()
        .get_child("i", "urn:other")
        .is_some());
    // scope ends with the element
    expect_condition(
        b"<message><a xmlns:p='x'/><p:b/></message>",
        "not-well-formed",
    );
    // a declared default namespace on the stanza itself
    let s = expect_ok(b"<iq xmlns='jabber:server'><q/></iq>");
    assert_eq!(s[0].ns(), "jabber:server");
    assert_eq!(s[0].children()[0].ns, "jabber:server");
    // same prefix on two different namespaces is fine
    expect_ok(b"<m xmlns:a='x' xmlns:b='y' a:t='1' b:t='2'/>");
}

#[test]
fn utf8() {
    let s = expect_ok(
        "<message to='jüliet@例え.jp'><body>😀 é ✓</body><日本 xmlns='urn:x'/></message>"
            .as_bytes(),
    );
    assert_eq!(s[0].to().as_deref(), Some("jüliet@例え.jp"));
    assert_eq!(s[0].children()[1].name, "日本");
    expect_condition(
        b"<message><body>\xC3\x28</body></message>",
        "unsupported-encoding",
    );
    expect_condition(
        b"<message><body>\xFF</body></message>",
        "unsupported-encoding",
    );
    expect_condition(b"<message to='\xED\xA0\x80'/>", "unsupported-encoding");
    expect_condition(b"<m\xC3/>", "unsupported-encoding");
}

#[test]
fn limits() {
    let limits = Limits {
        max_stanza_bytes: 64,
        max_depth: 3,
        max_attributes: 4,
        max_header_bytes: 4096,
    };
    let run = |body: &[u8]| {
        let mut input = HEADER.to_vec();
        input.extend_from_slice(body);
        run_all_ways(&input, limits)
    };
    // exactly 64 bytes is fine
    let body = format!("<message><body>{}</body></message>", "x".repeat(64 - 32));
    assert_eq!(body.len(), 64);
    let r = run(body.as_bytes());
    assert!(r.1.is_none(), "{r:?}");
    let body = format!("<message><body>{}</body></message>", "x".repeat(65 - 32));
    assert_eq!(
        run(body.as_bytes()).1.unwrap().condition(),
        "policy-violation"
    );
    // detected before the end arrives
    let body = format!("<message><body>{}", "x".repeat(100));
    assert_eq!(
        run(body.as_bytes()).1.unwrap().condition(),
        "policy-violation"
    );
    let body = format!("<message to='{}", "x".repeat(100));
    assert_eq!(
        run(body.as_bytes()).1.unwrap().condition(),
        "policy-violation"
    );
    // many small stanzas are fine
    assert!(run("<a><b/></a> ".repeat(50).as_bytes()).1.is_none());
    // depth
    assert!(run(b"<a><b><c/></b></a>").1.is_none());
    assert_eq!(
        run(b"<a><b><c><d/></c></b></a>").1.unwrap().condition(),
        "policy-violation"
    );
    // attributes
    assert!(run(b"<a b='1' c='2' d='3' e='4'/>").1.is_none());
    assert_eq!(
        run(b"<a b='1' c='2' d='3' e='4' f='5'/>")
            .1
            .unwrap()
            .condition(),
        "policy-violation"
    );
}

#[test]
fn restart_keeps_buffered_bytes() {
    let mut p = natter_xml::StreamParser::new(Limits::default());
    let mut data = HEADER.to_vec();
    data.extend_from_slice(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    data.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='2'><presence/>");
    p.feed(&data);
    assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    let Ok(Some(Event::Stanza(auth))) = p.next_event() else {
        panic!()
    };
    assert_eq!(auth.name(), "auth");
    assert!(p.buffered() > 0);
    p.restart();
    let Ok(Some(Event::StreamOpen(h))) = p.next_event() else {
        panic!()
    };
    assert_eq!(h.id.as_deref(), Some("2"));
    let Ok(Some(Event::Stanza(pr))) = p.next_event() else {
        panic!()
    };
    assert_eq!((pr.name(), pr.ns()), ("presence", NS_CLIENT));
    assert_eq!(p.next_event(), Ok(None));
    assert_eq!(p.buffered(), 0);
    // without restart a second header is just a (bad) stanza
    let mut p = natter_xml::StreamParser::new(Limits::default());
    p.feed(HEADER);
    p.feed(b"<?xml version='1.0'?>");
    p.next_event().unwrap();
    assert_eq!(p.next_event().unwrap_err().condition(), "restricted-xml");
}

#[test]
fn new_stream_without_xmlns() {
    // the namespace context is forgotten on restart
    let mut p = natter_xml::StreamParser::new(Limits::default());
    p.feed(HEADER);
    p.next_event().unwrap();
    p.restart();
    p.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><presence/>");
    let Ok(Some(Event::StreamOpen(h))) = p.next_event() else {
        panic!()
    };
    assert_eq!(h.default_ns, "");
    let Ok(Some(Event::Stanza(s))) = p.next_event() else {
        panic!()
    };
    assert_eq!(s.ns(), "");
}

#[test]
fn large_stanzas_fed_byte_by_byte_stay_linear() {
    let big = "y".repeat(250_000);
    let cases = [
        format!("<message><body>{big}</body></message>"),
        format!("<message to='{big}'/>"),
        format!("<message><body><![CDATA[{big}]]></body></message>"),
        format!("<message>{}</message>", "<a/>".repeat(60_000)),
    ];
    let start = std::time::Instant::now();
    for c in &cases {
        let mut p = natter_xml::StreamParser::new(Limits::default());
        p.feed(HEADER);
        p.next_event().unwrap();
        let mut got = None;
        for b in c.as_bytes() {
            p.feed(std::slice::from_ref(b));
            if let Some(e) = p.next_event().unwrap() {
                got = Some(e);
            }
        }
        let Some(Event::Stanza(s)) = got else {
            panic!()
        };
        assert_eq!(s.bytes().len(), c.len());
    }
    assert!(start.elapsed().as_secs() < 60, "took {:?}", start.elapsed());
}

/// Rough throughput check: `cargo test --release -p natter-xml -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let msg: &[u8] = b"<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' type='chat' id='ktx72v49'>\
        <body>Art thou not Romeo, and a Montague?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
    let n = 200_000;
    let mut data = Vec::with_capacity(msg.len() * 1000);
    for _ in 0..1000 {
        data.extend_from_slice(msg);
    }
    let mut p = natter_xml::StreamParser::new(Limits::default());
    p.feed(HEADER);
    p.next_event().unwrap();
    let start = std::time::Instant::now();
    let mut count = 0;
    let mut bytes = 0;
    while count < n {
        for chunk in data.chunks(4096) {
            p.feed(chunk);
            while let Some(Event::Stanza(s)) = p.next_event().unwrap() {
                bytes += s.to().map_or(0, |t| t.len()) + s.children().len();
                let out = s.rewrite(Some("juliet@example.com/balcony"), None, &[], b"");
                bytes += out.len();
                count += 1;
            }
        }
    }
    let el = start.elapsed();
    println!(
        "{count} stanzas (parse + rewrite) in {el:?}: {:.0}/s ({bytes})",
        count as f64 / el.as_secs_f64()
    );
}
