//! The part of data forms (XEP-0004) PEP needs: the fields of a
//! submitted form, and building a form.

use super::error::PepError;
use natter_xml::Element;

pub const NS: &str = "jabber:x:data";

/// One field: its name, values and, in a form to fill in, its type,
/// label and options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    pub var: String,
    pub ty: Option<&'static str>,
    pub label: Option<&'static str>,
    pub options: Vec<String>,
    pub values: Vec<String>,
}

impl Field {
    pub fn new(var: &str, ty: &'static str, label: &'static str) -> Field {
        Field {
            var: var.to_owned(),
            ty: Some(ty),
            label: Some(label),
            ..Field::default()
        }
    }

    /// A hidden field with one value (such as FORM_TYPE).
    pub fn hidden(var: &str, value: &str) -> Field {
        Field {
            var: var.to_owned(),
            ty: Some("hidden"),
            values: vec![value.to_owned()],
            ..Field::default()
        }
    }

    /// A field with only a name (as in a submitted form).
    #[cfg(test)]
    pub fn bare(var: &str) -> Field {
        Field {
            var: var.to_owned(),
            ..Field::default()
        }
    }

    pub fn value(mut self, v: &str) -> Field {
        self.values.push(v.to_owned());
        self
    }

    pub fn values(mut self, vs: &[impl AsRef<str>]) -> Field {
        self.values.extend(vs.iter().map(|v| v.as_ref().to_owned()));
        self
    }

    pub fn options<'a>(mut self, options: impl IntoIterator<Item = &'a str>) -> Field {
        self.options.extend(options.into_iter().map(str::to_owned));
        self
    }

    /// The field's only value, trimmed; `bad-request` unless there is
    /// exactly one.
    pub fn one(&self) -> Result<String, PepError> {
        match self.values.as_slice() {
            [v] => Ok(v.trim().to_owned()),
            _ => Err(PepError::BadRequest(format!(
                "{} takes one value",
                self.var
            ))),
        }
    }

    /// A text field's value: its values joined by newlines (none: empty).
    pub fn text(&self) -> String {
        self.values.join("\n")
    }
}

/// The fields of a form, in order (elements other than fields ignored).
pub fn fields(x: &Element) -> Vec<Field> {
    x.elements()
        .filter(|e| e.name == "field" && e.ns == NS)
        .map(|f| Field {
            var: f.attr("var").unwrap_or_default().to_owned(),
            values: f
                .elements()
                .filter(|v| v.name == "value" && v.ns == NS)
                .map(|v| v.text())
                .collect(),
            ..Field::default()
        })
        .collect()
}

/// A form of type `ty` with these fields.
pub fn build(ty: &str, fields: &[Field]) -> Element {
    let mut x = Element::new("x", NS).with_attr("type", ty);
    for f in fields {
        let mut e = Element::new("field", NS).with_attr("var", f.var.clone());
        if let Some(t) = f.ty {
            e.set_attr("type", t);
        }
        if let Some(l) = f.label {
            e.set_attr("label", l);
        }
        for o in &f.options {
            e.push_child(
                Element::new("option", NS)
                    .with_child(Element::new("value", NS).with_text(o.clone())),
            );
        }
        for v in &f.values {
            e.push_child(Element::new("value", NS).with_text(v.clone()));
        }
        x.push_child(e);
    }
    x
}

/// The data form child of `parent`, if any.
pub fn find(parent: &Element) -> Option<&Element> {
    parent.get_child("x", NS)
}
