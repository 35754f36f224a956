//! The VICI codec on arbitrary bytes, as a message and as a packet body. Decoding never panics, and what decodes
//! encodes back to exactly the same bytes (the encoding is canonical) and decodes to the same value again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvgw_vici::{Element, Message, Packet};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let bytes = m.encode().expect("a decoded message encodes");
        assert_eq!(bytes, data, "encoding is not canonical");
        assert_eq!(Message::decode(&bytes).expect("re-decodes"), m);
        walk(&m);
    }
    if let Ok(p) = Packet::decode(data) {
        let frame = p.encode().expect("a decoded packet encodes");
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(&frame[4..], data, "packet encoding is not canonical");
        assert_eq!(Packet::decode(&frame[4..]).expect("re-decodes"), p);
    }
});

/// The accessors the client uses, over the whole tree.
fn walk(m: &Message) {
    let _ = format!("{m:?}");
    for (key, element) in m.iter() {
        let _ = (m.get_str(key), m.get_list(key), m.get_section(key));
        if let Element::Section(s) = element {
            walk(s);
        }
    }
    let _ = m.sections().count();
}
