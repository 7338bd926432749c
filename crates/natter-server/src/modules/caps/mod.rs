//! Entity capabilities of clients (XEP-0115): what each session said it
//! supports, as the features of its disco#info. PEP (XEP-0163) reads the
//! `NODE+notify` features from here to know who wants which notifications.
//!
//! - `query`: a session's `<c/>`, the disco#info queries to its client,
//!   their answers, its router entry's features
//! - `cache`: verified strings server-wide, and the queries under way
//! - `verify`: the verification string and the checks of XEP-0115 §5

mod cache;
mod query;
pub mod verify;

pub use cache::{Cache, Key};
pub use query::{answer, forget, look_again, presence, SessionCaps};

/// The disco#info features of one client, sorted and deduplicated. Shared
/// (`Arc`) by every session that announced the same verification string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features(Vec<String>);

impl Features {
    pub fn new(mut features: Vec<String>) -> Features {
        features.sort_unstable();
        features.dedup();
        Features(features)
    }

    pub fn has(&self, feature: &str) -> bool {
        self.0.binary_search_by(|f| f.as_str().cmp(feature)).is_ok()
    }

    /// Whether the client asked for notifications of PEP node `node`
    /// (XEP-0163 §4: the feature `NODE+notify`).
    pub fn notify(&self, node: &str) -> bool {
        self.0
            .binary_search_by(|f| {
                // `f` against `node + "+notify"`, byte-wise, without building it.
                let (head, tail) = f.as_bytes().split_at(f.len().min(node.len()));
                head.cmp(node.as_bytes())
                    .then_with(|| tail.cmp(b"+notify".as_slice()))
            })
            .is_ok()
    }

    /// The nodes the client wants notifications of.
    pub fn notify_nodes(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|f| f.strip_suffix("+notify"))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_matches_the_whole_node() {
        let f = Features::new(vec![
            "urn:xmpp:avatar:metadata+notify".into(),
            "http://jabber.org/protocol/disco#info".into(),
            "eu.siacs.conversations.axolotl.devicelist+notify".into(),
        ]);
        assert!(f.notify("urn:xmpp:avatar:metadata"));
        assert!(f.notify("eu.siacs.conversations.axolotl.devicelist"));
        assert!(!f.notify("urn:xmpp:avatar"));
        assert!(!f.notify("urn:xmpp:avatar:metadata+notify"));
        assert!(!f.notify("http://jabber.org/protocol/disco#info"));
        assert!(f.has("http://jabber.org/protocol/disco#info"));
        let g = Features::new(vec!["é+notify".into(), "ée".into()]);
        assert!(g.notify("é"));
        assert!(!g.notify("\u{e9}e"));
        let mut nodes: Vec<_> = f.notify_nodes().collect();
        nodes.sort_unstable();
        assert_eq!(
            nodes,
            [
                "eu.siacs.conversations.axolotl.devicelist",
                "urn:xmpp:avatar:metadata"
            ]
        );
    }
}
