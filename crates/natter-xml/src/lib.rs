//! RFC 6120 "restricted XML" codec for XMPP streams.
//!
//! [`StreamParser`] is an incremental, push-based parser: feed it bytes as
//! they arrive and pull [`Event`]s. It does no I/O. Every top-level element
//! of the stream becomes a [`Stanza`]: a validated routing envelope that
//! owns the element's raw bytes and records, as byte spans, the top
//! element's attributes and its direct children. No tree is built on the
//! routing path; [`Stanza::element`] builds an owned [`Element`] tree on
//! demand, and [`Stanza::rewrite`] produces a copy with `from`/`to`
//! stamped, children removed and content appended.
//!
//! The parser enforces RFC 6120 §11: no comments, processing instructions
//! (other than the XML declaration), DTDs or non-predefined entities; UTF-8
//! only; namespaces are checked; size, depth and attribute limits apply.
//! Errors map to stream error conditions via [`XmlError::condition`].
//!
//! # Layout
//!
//! - `parser.rs`: [`StreamParser`], [`Limits`], [`Event`], [`StreamHeader`];
//!   prolog, stream header and stream end handling, buffer management.
//! - `scanner.rs`: the resumable per-stanza scanner (token boundaries,
//!   validation, namespace scoping, envelope spans).
//! - `tokenizer.rs`: lexical helpers on complete tokens (names, start/end
//!   tags, references, character checks).
//! - `stanza.rs`: [`Stanza`], [`Child`], `rewrite`.
//! - `element.rs`: [`Element`], [`Node`], tree building and serialisation.
//! - `escape.rs`: [`escape_text`], [`escape_attr`] and unescaping.
//! - `error.rs`: [`XmlError`].
//!
//! # Example
//!
//! ```
//! use natter_xml::{Event, Limits, StreamParser};
//! let mut p = StreamParser::new(Limits::default());
//! p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
//! p.feed(b"<message to='a@b'><body>hi</body></message>");
//! assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
//! let Ok(Some(Event::Stanza(s))) = p.next_event() else { panic!() };
//! assert_eq!((s.name(), s.ns()), ("message", "jabber:client"));
//! assert_eq!(s.to().as_deref(), Some("a@b"));
//! assert!(s.has_child("body", "jabber:client"));
//! assert_eq!(p.next_event(), Ok(None));
//! ```

mod element;
mod error;
mod escape;
mod parser;
mod scanner;
mod stanza;
mod tokenizer;

pub use element::{Element, Node};
pub use error::XmlError;
pub use escape::{escape_attr, escape_text};
pub use parser::{Event, Limits, StreamHeader, StreamParser};
pub use stanza::{Child, Stanza, PARSE_MAX_DEPTH};

/// The XMPP streams namespace.
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// The client-to-server content namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// The server-to-server content namespace.
pub const NS_SERVER: &str = "jabber:server";
/// The namespace bound to the `xml` prefix.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
