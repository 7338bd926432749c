//! The verification string of XEP-0115 §5: building it from a disco#info
//! answer (§5.1), the checks that make an answer ill-formed (§5.4), and
//! the hash functions a `<c hash='…'/>` may name.

use crate::ns;
use base64::Engine;
use natter_xml::Element;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// XEP-0128 extended information forms.
const NS_DATA: &str = "jabber:x:data";

/// A hash function of the IANA "Hash Function Textual Names" registry that
/// natterd can check (XEP-0115 §8: SHA-1 is mandatory to implement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algo {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    /// The function a `hash` attribute names; None for one natterd cannot
    /// check (XEP-0115 §5.4 step 2: such an answer is used for its sender
    /// only, never cached).
    pub fn parse(name: &str) -> Option<Algo> {
        Some(match name {
            "sha-1" => Algo::Sha1,
            "sha-224" => Algo::Sha224,
            "sha-256" => Algo::Sha256,
            "sha-384" => Algo::Sha384,
            "sha-512" => Algo::Sha512,
            _ => return None,
        })
    }

    /// `data` hashed, in Base64 with padding (RFC 4648 §4).
    pub fn hash_base64(self, data: &[u8]) -> String {
        let digest = match self {
            Algo::Sha1 => Sha1::digest(data).to_vec(),
            Algo::Sha224 => Sha224::digest(data).to_vec(),
            Algo::Sha256 => Sha256::digest(data).to_vec(),
            Algo::Sha384 => Sha384::digest(data).to_vec(),
            Algo::Sha512 => Sha512::digest(data).to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(digest)
    }
}

/// Why an answer does not establish a verification string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Two identities with the same category/type/lang/name (§5.4 3.3).
    DuplicateIdentity,
    /// Two features with the same name (§5.4 3.4).
    DuplicateFeature,
    /// Two extended forms with the same FORM_TYPE (§5.4 3.5).
    DuplicateForm,
    /// A FORM_TYPE with differing values (§5.4 3.5).
    FormTypeValues,
    /// Well-formed, but it hashes to something else (§5.4 3.9).
    Mismatch,
}

impl Invalid {
    pub fn text(self) -> &'static str {
        match self {
            Invalid::DuplicateIdentity => "two identical identities",
            Invalid::DuplicateFeature => "two identical features",
            Invalid::DuplicateForm => "two extended forms with the same FORM_TYPE",
            Invalid::FormTypeValues => "a FORM_TYPE with differing values",
            Invalid::Mismatch => "the answer does not hash to the announced ver",
        }
    }
}

/// The features of a disco#info `<query/>`, as sent (not checked).
pub fn features(query: &Element) -> Vec<String> {
    query
        .elements()
        .filter(|e| e.name == "feature" && e.ns == ns::DISCO_INFO)
        .filter_map(|e| e.attr("var").map(str::to_owned))
        .collect()
}

/// Checks `query` (the disco#info answer) against the announced `ver`
/// hashed with `algo`: its features when it is well-formed and hashes to
/// `ver` (XEP-0115 §5.4 step 3).
pub fn verify(algo: Algo, ver: &str, query: &Element) -> Result<Vec<String>, Invalid> {
    let s = input(query)?;
    if algo.hash_base64(s.as_bytes()) != ver {
        return Err(Invalid::Mismatch);
    }
    Ok(features(query))
}

/// The string S of XEP-0115 §5.1 for a disco#info `<query/>`, or why the
/// answer is ill-formed (§5.4). Sorting is by bytes ("i;octet"); text is
/// taken as parsed, so a literal "&lt;" in a name stays those four
/// characters.
pub fn input(query: &Element) -> Result<String, Invalid> {
    let mut s = String::new();
    let mut identities: Vec<[&str; 4]> = query
        .elements()
        .filter(|e| e.name == "identity" && e.ns == ns::DISCO_INFO)
        .map(|e| {
            let get = |k| e.attr(k).unwrap_or("");
            [get("category"), get("type"), get("xml:lang"), get("name")]
        })
        .collect();
    identities.sort_unstable();
    if identities.windows(2).any(|w| w[0] == w[1]) {
        return Err(Invalid::DuplicateIdentity);
    }
    for id in &identities {
        s.push_str(&id.join("/"));
        s.push('<');
    }
    let mut features = features(query);
    features.sort_unstable();
    if features.windows(2).any(|w| w[0] == w[1]) {
        return Err(Invalid::DuplicateFeature);
    }
    for f in &features {
        s.push_str(f);
        s.push('<');
    }
    let mut forms = Vec::new();
    for x in query
        .elements()
        .filter(|e| e.name == "x" && e.ns == NS_DATA)
    {
        if let Some(form) = Form::read(x)? {
            forms.push(form);
        }
    }
    forms.sort_unstable_by(|a, b| a.form_type.cmp(&b.form_type));
    if forms.windows(2).any(|w| w[0].form_type == w[1].form_type) {
        return Err(Invalid::DuplicateForm);
    }
    forms.retain(|f| f.hidden);
    for form in forms {
        s.push_str(&form.form_type);
        s.push('<');
        for (var, values) in form.fields {
            s.push_str(var);
            s.push('<');
            for v in values {
                s.push_str(&v);
                s.push('<');
            }
        }
    }
    Ok(s)
}

/// One XEP-0128 form of an answer.
struct Form<'a> {
    form_type: String,
    /// Whether FORM_TYPE is a hidden field; other forms are left out of S
    /// (§5.4 3.6) but still count as duplicates.
    hidden: bool,
    /// Its other fields with their values, each sorted.
    fields: Vec<(&'a str, Vec<String>)>,
}

impl<'a> Form<'a> {
    /// The form, or None when it has no FORM_TYPE value (left out of S,
    /// §5.4 3.6).
    fn read(x: &'a Element) -> Result<Option<Form<'a>>, Invalid> {
        let fields: Vec<&Element> = x
            .elements()
            .filter(|e| e.name == "field" && e.ns == NS_DATA)
            .collect();
        let Some(ft) = fields.iter().find(|f| f.attr("var") == Some("FORM_TYPE")) else {
            return Ok(None);
        };
        let mut ft_values = values(ft).into_iter();
        let Some(form_type) = ft_values.next() else {
            return Ok(None);
        };
        if ft_values.any(|v| v != form_type) {
            return Err(Invalid::FormTypeValues);
        }
        let mut rest: Vec<(&str, Vec<String>)> = fields
            .iter()
            .filter_map(|f| {
                let var = f.attr("var")?;
                (var != "FORM_TYPE").then(|| {
                    let mut v = values(f);
                    v.sort_unstable();
                    (var, v)
                })
            })
            .collect();
        rest.sort_by(|a, b| a.0.cmp(b.0));
        Ok(Some(Form {
            form_type,
            hidden: ft.attr("type") == Some("hidden"),
            fields: rest,
        }))
    }
}

/// The character data of a field's `<value/>` children, in order.
fn values(field: &Element) -> Vec<String> {
    field
        .elements()
        .filter(|v| v.name == "value" && v.ns == NS_DATA)
        .map(Element::text)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<query/>` of a disco#info result holding `inner`.
    fn query(inner: &str) -> Element {
        let xml = format!(
            "<iq xmlns='jabber:client' type='result' id='1'>\
             <query xmlns='http://jabber.org/protocol/disco#info'>{inner}</query></iq>"
        );
        natter_xml::Stanza::parse(xml.as_bytes(), ns::CLIENT)
            .unwrap()
            .element()
            .unwrap()
            .get_child("query", ns::DISCO_INFO)
            .unwrap()
            .clone()
    }

    const SIMPLE: &str = "<identity category='client' name='Exodus 0.9.1' type='pc'/>\
        <feature var='http://jabber.org/protocol/muc'/>\
        <feature var='http://jabber.org/protocol/disco#info'/>\
        <feature var='http://jabber.org/protocol/caps'/>\
        <feature var='http://jabber.org/protocol/disco#items'/>";

    const SOFTWARE_INFO: &str = "<x xmlns='jabber:x:data' type='result'>\
        <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
        <field var='ip_version'><value>ipv6</value><value>ipv4</value></field>\
        <field var='os'><value>Mac</value></field>\
        <field var='software_version'><value>0.11</value></field>\
        <field var='software'><value>Psi</value></field>\
        <field var='os_version'><value>10.5.1</value></field>\
        </x>";

    fn complex(form: &str) -> Element {
        query(&format!(
            "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
             <identity xml:lang='el' category='client' name='\u{3a8} 0.11' type='pc'/>\
             <feature var='http://jabber.org/protocol/caps'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/>\
             <feature var='http://jabber.org/protocol/muc'/>{form}"
        ))
    }

    #[test]
    fn the_simple_example_of_section_5_2() {
        let q = query(SIMPLE);
        assert_eq!(
            input(&q).unwrap(),
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<\
             http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
             http://jabber.org/protocol/muc<"
        );
        let f = verify(Algo::Sha1, "QgayPKawpkPSDYmwT/WM94uAlu0=", &q).unwrap();
        assert_eq!(f.len(), 4);
        assert!(f.iter().any(|f| f == "http://jabber.org/protocol/muc"));
    }

    #[test]
    fn the_complex_example_of_section_5_3() {
        let q = complex(SOFTWARE_INFO);
        assert_eq!(
            input(&q).unwrap(),
            "client/pc/el/\u{3a8} 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<\
             http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
             http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<\
             ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<\
             software_version<0.11<"
        );
        assert!(verify(Algo::Sha1, "q07IKJEyjvHSyhy//CH0CxmKi8w=", &q).is_ok());
    }

    #[test]
    fn other_hash_functions_and_a_wrong_ver() {
        let q = query(SIMPLE);
        let s = input(&q).unwrap();
        for algo in [Algo::Sha224, Algo::Sha256, Algo::Sha384, Algo::Sha512] {
            let ver = algo.hash_base64(s.as_bytes());
            assert!(verify(algo, &ver, &q).is_ok(), "{algo:?}");
            assert_eq!(verify(Algo::Sha1, &ver, &q).unwrap_err(), Invalid::Mismatch);
        }
        assert_eq!(
            Algo::Sha256.hash_base64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(Algo::parse("sha-256"), Some(Algo::Sha256));
        assert_eq!(Algo::parse("md5"), None);
        assert_eq!(Algo::parse("SHA-1"), None, "names are lower case");
        // One byte off, or the padding dropped: not the same string.
        assert_eq!(
            verify(Algo::Sha1, "QgayPKawpkPSDYmwT/WM94uAlu0", &q).unwrap_err(),
            Invalid::Mismatch
        );
        let other = query(&SIMPLE.replace("muc'", "muc#user'"));
        assert_eq!(
            verify(Algo::Sha1, "QgayPKawpkPSDYmwT/WM94uAlu0=", &other).unwrap_err(),
            Invalid::Mismatch
        );
    }

    #[test]
    fn ill_formed_answers_are_rejected() {
        let twice = |extra: &str| complex(&format!("{SOFTWARE_INFO}{extra}"));
        let q = query(&format!(
            "{SIMPLE}<identity category='client' name='Exodus 0.9.1' type='pc'/>"
        ));
        assert_eq!(input(&q).unwrap_err(), Invalid::DuplicateIdentity);
        // The same category and type in another language is not a duplicate.
        let q = query(&format!(
            "{SIMPLE}<identity category='client' name='Exodus 0.9.1' type='pc' xml:lang='de'/>"
        ));
        assert!(input(&q).is_ok());
        let q = query(&format!(
            "{SIMPLE}<feature var='http://jabber.org/protocol/muc'/>"
        ));
        assert_eq!(input(&q).unwrap_err(), Invalid::DuplicateFeature);
        assert_eq!(
            input(&twice(SOFTWARE_INFO)).unwrap_err(),
            Invalid::DuplicateForm
        );
        let two_values = "<x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:a</value><value>urn:b</value></field>\
            </x>";
        assert_eq!(
            input(&complex(two_values)).unwrap_err(),
            Invalid::FormTypeValues
        );
        // The same value twice is one value.
        let same_twice = "<x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:a</value><value>urn:a</value></field>\
            <field var='f'><value>v</value></field></x>";
        assert!(input(&complex(same_twice))
            .unwrap()
            .ends_with("muc<urn:a<f<v<"));
    }

    #[test]
    fn forms_without_a_hidden_form_type_are_left_out() {
        let plain = input(&complex("")).unwrap();
        let not_hidden = "<x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE'><value>urn:a</value></field>\
            <field var='f'><value>v</value></field></x>";
        let no_form_type = "<x xmlns='jabber:x:data' type='result'>\
            <field var='f'><value>v</value></field></x>";
        assert_eq!(input(&complex(not_hidden)).unwrap(), plain);
        assert_eq!(input(&complex(no_form_type)).unwrap(), plain);
        // Ignored, it still makes the answer verify (§5.4 3.6).
        let q = complex(&format!("{SOFTWARE_INFO}{not_hidden}"));
        assert!(verify(Algo::Sha1, "q07IKJEyjvHSyhy//CH0CxmKi8w=", &q).is_ok());
    }

    #[test]
    fn an_escaped_lt_stays_literal() {
        // "&amp;lt;" parses to the four characters "&lt;", hashed as such.
        let q = query("<identity category='client' type='pc' name='a&amp;lt;b'/>");
        assert_eq!(input(&q).unwrap(), "client/pc//a&lt;b<");
        let q = query("<identity category='client' type='pc' name='a&lt;b'/>");
        assert_eq!(input(&q).unwrap(), "client/pc//a<b<");
    }
}
