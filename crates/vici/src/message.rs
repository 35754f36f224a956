//! VICI messages: an ordered tree of sections, key/values and lists, and its wire encoding.

use crate::{Result, ViciError};

const SECTION_START: u8 = 1;
const SECTION_END: u8 = 2;
const KEY_VALUE: u8 = 3;
const LIST_START: u8 = 4;
const LIST_ITEM: u8 = 5;
const LIST_END: u8 = 6;

/// Sections may nest; charon itself never sends deeper than a handful of levels, so a bound protects the decoder
/// against a hostile or corrupt peer without limiting real use.
const MAX_DEPTH: usize = 64;

/// One named entry of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// Values are raw bytes on the wire; charon's values are text in practice.
    Value(Vec<u8>),
    Section(Message),
    List(Vec<Vec<u8>>),
}

/// An ordered VICI message. Order is kept because charon keys some answers by position (e.g. `list-sas` children).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    entries: Vec<(String, Element)>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.entries {
            match v {
                Element::Value(b) => m.entry(k, &String::from_utf8_lossy(b)),
                Element::Section(s) => m.entry(k, s),
                Element::List(items) => {
                    m.entry(k, &items.iter().map(|i| String::from_utf8_lossy(i)).collect::<Vec<_>>())
                }
            };
        }
        m.finish()
    }
}

impl Message {
    pub fn new() -> Self {
        Message::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends a key/value.
    pub fn push_value(&mut self, key: impl Into<String>, value: impl AsRef<[u8]>) {
        self.entries.push((key.into(), Element::Value(value.as_ref().to_vec())));
    }

    pub fn push_list<I, V>(&mut self, key: impl Into<String>, items: I)
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        self.entries.push((key.into(), Element::List(items.into_iter().map(|v| v.as_ref().to_vec()).collect())));
    }

    pub fn push_section(&mut self, key: impl Into<String>, section: Message) {
        self.entries.push((key.into(), Element::Section(section)));
    }

    /// Builder form of [`Message::push_value`].
    pub fn with(mut self, key: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.push_value(key, value);
        self
    }

    /// Builder form of [`Message::push_list`].
    pub fn with_list<I, V>(mut self, key: impl Into<String>, items: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        self.push_list(key, items);
        self
    }

    /// Builder form of [`Message::push_section`].
    pub fn with_section(mut self, key: impl Into<String>, section: Message) -> Self {
        self.push_section(key, section);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Element)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The first element named `key`.
    pub fn get(&self, key: &str) -> Option<&Element> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A key/value as text (`None` when absent, not a value, or not UTF-8).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Element::Value(v) => std::str::from_utf8(v).ok(),
            _ => None,
        }
    }

    pub fn get_section(&self, key: &str) -> Option<&Message> {
        match self.get(key)? {
            Element::Section(s) => Some(s),
            _ => None,
        }
    }

    /// A list as text items (non-UTF-8 items are skipped).
    pub fn get_list(&self, key: &str) -> Option<Vec<&str>> {
        match self.get(key)? {
            Element::List(items) => Some(items.iter().filter_map(|i| std::str::from_utf8(i).ok()).collect()),
            _ => None,
        }
    }

    /// Sub-sections in order, with their names (e.g. the IKE_SAs of one `list-sa` event).
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Message)> {
        self.entries.iter().filter_map(|(k, v)| match v {
            Element::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }

    /// Appends the wire encoding of this message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        for (key, element) in &self.entries {
            match element {
                Element::Value(v) => {
                    out.push(KEY_VALUE);
                    put_name(out, key)?;
                    put_value(out, v)?;
                }
                Element::Section(s) => {
                    out.push(SECTION_START);
                    put_name(out, key)?;
                    s.encode_into(out)?;
                    out.push(SECTION_END);
                }
                Element::List(items) => {
                    out.push(LIST_START);
                    put_name(out, key)?;
                    for item in items {
                        out.push(LIST_ITEM);
                        put_value(out, item)?;
                    }
                    out.push(LIST_END);
                }
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decodes a complete message (the rest of a packet after its header).
    pub fn decode(bytes: &[u8]) -> Result<Message> {
        let mut r = Reader { bytes, pos: 0 };
        // The stack holds the sections being filled; the bottom one is the message itself.
        let mut stack: Vec<(String, Message)> = vec![(String::new(), Message::new())];
        while let Some(kind) = r.byte() {
            match kind {
                SECTION_START => {
                    if stack.len() > MAX_DEPTH {
                        return Err(protocol("sections nested too deeply"));
                    }
                    let name = r.name()?;
                    stack.push((name, Message::new()));
                }
                SECTION_END => {
                    if stack.len() < 2 {
                        return Err(protocol("section end without a section"));
                    }
                    let (name, done) = stack.pop().ok_or_else(|| protocol("section end without a section"))?;
                    top(&mut stack)?.push_section(name, done);
                }
                KEY_VALUE => {
                    let name = r.name()?;
                    let value = r.value()?.to_vec();
                    top(&mut stack)?.entries.push((name, Element::Value(value)));
                }
                LIST_START => {
                    let name = r.name()?;
                    let mut items = Vec::new();
                    loop {
                        match r.byte() {
                            Some(LIST_ITEM) => items.push(r.value()?.to_vec()),
                            Some(LIST_END) => break,
                            Some(other) => return Err(protocol(&format!("element type {other} inside a list"))),
                            None => return Err(protocol("list not terminated")),
                        }
                    }
                    top(&mut stack)?.entries.push((name, Element::List(items)));
                }
                other => return Err(protocol(&format!("unexpected element type {other}"))),
            }
        }
        if stack.len() != 1 {
            return Err(protocol("section not terminated"));
        }
        stack.pop().map(|(_, m)| m).ok_or_else(|| protocol("empty decoder stack"))
    }
}

fn top(stack: &mut [(String, Message)]) -> Result<&mut Message> {
    stack.last_mut().map(|(_, m)| m).ok_or_else(|| protocol("empty decoder stack"))
}

fn protocol(what: &str) -> ViciError {
    ViciError::Protocol(what.to_string())
}

fn put_name(out: &mut Vec<u8>, name: &str) -> Result<()> {
    let len = u8::try_from(name.len()).map_err(|_| protocol(&format!("name longer than 255 bytes: {name:.40}…")))?;
    out.push(len);
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

fn put_value(out: &mut Vec<u8>, value: &[u8]) -> Result<()> {
    let len = u16::try_from(value.len()).map_err(|_| protocol("value longer than 65535 bytes"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| protocol("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn name(&mut self) -> Result<String> {
        let len = self.byte().ok_or_else(|| protocol("truncated name"))?;
        let raw = self.take(usize::from(len))?;
        String::from_utf8(raw.to_vec()).map_err(|_| protocol("name is not UTF-8"))
    }

    fn value(&mut self) -> Result<&'a [u8]> {
        let len = self.take(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]);
        self.take(usize::from(len))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.bytes[self.pos.min(self.bytes.len())..];
        self.pos = self.bytes.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message::new()
            .with("version", "2")
            .with_list("local_addrs", ["203.0.113.1"])
            .with_section("local", Message::new().with("auth", "psk").with("id", "203.0.113.1"))
            .with_section(
                "children",
                Message::new().with_section(
                    "net",
                    Message::new()
                        .with_list("local_ts", ["192.168.10.0/24", "192.168.11.0/24"])
                        .with_list("remote_ts", Vec::<&str>::new())
                        .with("start_action", "trap"),
                ),
            )
    }

    #[test]
    fn round_trip_nested_sections_and_lists() {
        let msg = sample();
        let bytes = msg.encode().expect("encodes");
        let back = Message::decode(&bytes).expect("decodes");
        assert_eq!(back, msg);
        let child = back.get_section("children").and_then(|c| c.get_section("net")).expect("child");
        assert_eq!(child.get_list("local_ts"), Some(vec!["192.168.10.0/24", "192.168.11.0/24"]));
        assert_eq!(child.get_list("remote_ts"), Some(vec![]));
        assert_eq!(child.get_str("start_action"), Some("trap"));
        assert_eq!(back.get_str("version"), Some("2"));
        assert_eq!(back.get_str("local"), None, "a section is not a value");
    }

    #[test]
    fn empty_message_is_empty_bytes() {
        assert_eq!(Message::new().encode().expect("encodes"), Vec::<u8>::new());
        assert!(Message::decode(&[]).expect("decodes").is_empty());
    }

    /// Built by hand from the element table in the VICI README:
    /// `key = value`, `list { item }`, `sec { k = v }`.
    #[test]
    fn decodes_bytes_built_from_the_spec() {
        let bytes: Vec<u8> = [
            &[3u8, 3][..],
            b"key",
            &[0, 5],
            b"value",
            &[4, 4],
            b"list",
            &[5, 0, 4],
            b"item",
            &[6],
            &[1, 3],
            b"sec",
            &[3, 1],
            b"k",
            &[0, 1],
            b"v",
            &[2],
        ]
        .concat();
        let msg = Message::decode(&bytes).expect("decodes");
        assert_eq!(msg.get_str("key"), Some("value"));
        assert_eq!(msg.get_list("list"), Some(vec!["item"]));
        assert_eq!(msg.get_section("sec").and_then(|s| s.get_str("k")), Some("v"));
        assert_eq!(msg.encode().expect("encodes"), bytes, "encoding is canonical");
    }

    #[test]
    fn keeps_order_and_duplicate_names() {
        let msg = Message::new().with("b", "1").with("a", "2").with("b", "3");
        let back = Message::decode(&msg.encode().expect("encodes")).expect("decodes");
        let keys: Vec<&str> = back.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(back.get_str("b"), Some("1"));
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            &[1u8, 1, b's'][..],                // section never closed
            &[2u8][..],                         // end without start
            &[3u8, 1, b'k', 0, 9, b'x'][..],    // value shorter than announced
            &[4u8, 1, b'l', 5, 0, 1, b'x'][..], // list never closed
            &[4u8, 1, b'l', 3][..],             // key/value inside a list
            &[9u8][..],                         // unknown element type
            &[5u8, 0, 0][..],                   // list item outside a list
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn rejects_unencodable_sizes() {
        let long_name = "n".repeat(256);
        assert!(Message::new().with(long_name, "v").encode().is_err());
        assert!(Message::new().with("k", vec![0u8; 65536]).encode().is_err());
        assert!(Message::new().with("k", vec![0u8; 65535]).encode().is_ok());
    }

    #[test]
    fn limits_nesting_depth() {
        let mut bytes: Vec<u8> = [1u8, 1, b's'].repeat(100);
        bytes.extend(std::iter::repeat_n(2u8, 100));
        assert!(Message::decode(&bytes).is_err());
    }

    #[test]
    fn debug_shows_text() {
        let shown = format!("{:?}", Message::new().with("a", "b").with_list("l", ["x"]));
        assert_eq!(shown, r#"{"a": "b", "l": ["x"]}"#);
    }
}
