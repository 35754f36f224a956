//! Property tests of the VICI codec: every message and packet that can be encoded decodes back to itself, and
//! decoding arbitrary bytes never panics and is canonical when it succeeds.

use openvgw_vici::{Element, Message, Packet, PacketType};
use proptest::prelude::*;

/// Names as charon's are (and as the wire allows: at most 255 bytes of UTF-8).
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_-]{0,12}", any::<String>().prop_map(|s| s.chars().take(40).collect()), Just("n".repeat(255)),]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..48), "[ -~]{0,20}".prop_map(String::into_bytes)]
}

fn message() -> impl Strategy<Value = Message> {
    let leaf = proptest::collection::vec(
        prop_oneof![
            (key(), value()).prop_map(|(k, v)| (k, Element::Value(v))),
            (key(), proptest::collection::vec(value(), 0..4)).prop_map(|(k, l)| (k, Element::List(l))),
        ],
        0..5,
    )
    .prop_map(build);
    leaf.prop_recursive(4, 48, 5, |inner| {
        proptest::collection::vec(
            prop_oneof![
                (key(), value()).prop_map(|(k, v)| (k, Element::Value(v))),
                (key(), proptest::collection::vec(value(), 0..4)).prop_map(|(k, l)| (k, Element::List(l))),
                (key(), inner).prop_map(|(k, m)| (k, Element::Section(m))),
            ],
            0..5,
        )
        .prop_map(build)
    })
}

fn build(entries: Vec<(String, Element)>) -> Message {
    let mut m = Message::new();
    for (k, e) in entries {
        match e {
            Element::Value(v) => m.push_value(k, v),
            Element::List(items) => m.push_list(k, items),
            Element::Section(s) => m.push_section(k, s),
        }
    }
    m
}

const KINDS: [(PacketType, bool, bool); 8] = [
    // (type, named, carries a message)
    (PacketType::CmdRequest, true, true),
    (PacketType::CmdResponse, false, true),
    (PacketType::CmdUnknown, false, false),
    (PacketType::EventRegister, true, false),
    (PacketType::EventUnregister, true, false),
    (PacketType::EventConfirm, false, false),
    (PacketType::EventUnknown, false, false),
    (PacketType::Event, true, true),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn messages_round_trip(m in message()) {
        let bytes = m.encode().expect("names and values within the wire's limits encode");
        prop_assert_eq!(Message::decode(&bytes).expect("decodes"), m);
    }

    #[test]
    fn packets_round_trip(kind in 0..KINDS.len(), name in "[a-z-]{1,20}", m in message()) {
        let (kind, named, with_message) = KINDS[kind];
        let p = Packet::new(kind, if named { &name } else { "" }, if with_message { m } else { Message::new() });
        let frame = p.encode().expect("encodes");
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        prop_assert_eq!(len, frame.len() - 4);
        prop_assert_eq!(Packet::decode(&frame[4..]).expect("decodes"), p);
    }

    /// Arbitrary bytes (biased towards the element type codes) decode or fail cleanly; what decodes re-encodes to
    /// the same bytes.
    #[test]
    fn decoding_arbitrary_bytes_is_canonical(
        bytes in proptest::collection::vec(prop_oneof![0u8..8, any::<u8>()], 0..64)
    ) {
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.encode().expect("re-encodes"), bytes.clone());
        }
        if let Ok(p) = Packet::decode(&bytes) {
            let frame = p.encode().expect("re-encodes");
            prop_assert_eq!(&frame[4..], &bytes[..]);
        }
    }
}
