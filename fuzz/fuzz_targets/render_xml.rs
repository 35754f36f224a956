//! Alibaba's XML renderer (`Format=XML`) on arbitrary reply documents: the output must be well-formed XML 1.0
//! (checked character by character and by a real parser), and reading it back gives the document: one element per
//! field, array items as repeated elements, every string's text exactly (up to XML's line-end normalisation of a
//! raw `\r`, which parsers apply unevenly; control characters other than tab and line ends may be escaped or
//! replaced as the renderer chooses).
//!
//! Field names are made valid XML names first: the renderer's names come from response structs, its values from
//! anywhere (names, descriptions, error messages echoing parameters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvgw_fuzz::{is_xml_char, parse_xml, value, xml_line_ends};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let body = match named(value(data)) {
        Value::Object(map) => Value::Object(map),
        // Replies are objects (`respond` turns anything else into one).
        other => Value::Object(Map::from_iter([("Value".to_string(), other)])),
    };
    let xml = openvgw_aliyun::fuzzing::to_xml("FuzzResponse", &body);
    let doc = parse_xml(&xml);
    let root = doc.root_element();
    assert!(root.has_tag_name("FuzzResponse"));
    let Value::Object(fields) = &body else { unreachable!() };
    let expected: Vec<Expect> = fields.iter().flat_map(|(k, v)| expect(k, v)).collect();
    check_children(root, &expected, &xml);
});

/// What one element should be.
enum Expect<'a> {
    Text(&'a str, String),
    Empty(&'a str),
    Children(&'a str, Vec<Expect<'a>>),
}

fn expect<'a>(name: &'a str, v: &'a Value) -> Vec<Expect<'a>> {
    match v {
        Value::Array(items) => items.iter().flat_map(|i| expect(name, i)).collect(),
        Value::Object(map) => vec![Expect::Children(name, map.iter().flat_map(|(k, v)| expect(k, v)).collect())],
        Value::Null => vec![Expect::Empty(name)],
        Value::String(s) => vec![Expect::Text(name, s.clone())],
        other => vec![Expect::Text(name, other.to_string())],
    }
}

fn check_children(node: roxmltree::Node, expected: &[Expect], xml: &str) {
    let elements: Vec<roxmltree::Node> = node.children().filter(|n| n.is_element()).collect();
    assert_eq!(elements.len(), expected.len(), "element count under <{}> in {xml:?}", node.tag_name().name());
    for (el, want) in elements.iter().zip(expected) {
        let text: String = el.children().filter(|n| n.is_text()).filter_map(|n| n.text()).collect();
        let (name, child_elements) = (el.tag_name().name(), el.children().filter(|n| n.is_element()).count());
        match want {
            Expect::Text(n, s) => {
                assert_eq!(name, *n);
                assert_eq!(child_elements, 0, "<{n}> holds elements in {xml:?}");
                // A character XML 1.0 cannot carry must be escaped or replaced somehow, and the control characters
                // it allows but discourages (DEL, C1) may be: only the text of strings without them is compared.
                let plain = s.chars().all(|c| is_xml_char(c) && (!c.is_control() || matches!(c, '\t' | '\n' | '\r')));
                let faithful = !plain || text == *s || xml_line_ends(&text) == xml_line_ends(s);
                assert!(faithful, "<{n}> reads back as {text:?}, not {s:?}, in {xml:?}");
            }
            Expect::Empty(n) => {
                assert_eq!(name, *n);
                assert!(child_elements == 0 && text.is_empty(), "<{n}/> is not empty in {xml:?}");
            }
            Expect::Children(n, kids) => {
                assert_eq!(name, *n);
                assert!(text.is_empty(), "<{n}> holds text {text:?} in {xml:?}");
                check_children(*el, kids, xml);
            }
        }
    }
}

/// The document with every field name made an XML name (letters, digits, `_`; not starting with a digit or "xml").
fn named(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (xml_name(&k), named(v))).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(named).collect()),
        other => other,
    }
}

fn xml_name(k: &str) -> String {
    let name: String = k.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || name.to_ascii_lowercase().starts_with("xml")
    {
        format!("F{name}")
    } else {
        name
    }
}
