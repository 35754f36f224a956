//! VICI packets: a 32-bit big-endian length, a type byte, an optional name, an optional message.

use crate::message::Reader;
use crate::{Message, Result, ViciError};

/// charon refuses larger packets (`VICI_MESSAGE_SIZE_MAX`, 512 KiB); anything bigger is a broken stream.
pub const MAX_PACKET: usize = 512 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    CmdRequest,
    CmdResponse,
    CmdUnknown,
    EventRegister,
    EventUnregister,
    EventConfirm,
    EventUnknown,
    Event,
}

impl PacketType {
    fn code(self) -> u8 {
        match self {
            PacketType::CmdRequest => 0,
            PacketType::CmdResponse => 1,
            PacketType::CmdUnknown => 2,
            PacketType::EventRegister => 3,
            PacketType::EventUnregister => 4,
            PacketType::EventConfirm => 5,
            PacketType::EventUnknown => 6,
            PacketType::Event => 7,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => PacketType::CmdRequest,
            1 => PacketType::CmdResponse,
            2 => PacketType::CmdUnknown,
            3 => PacketType::EventRegister,
            4 => PacketType::EventUnregister,
            5 => PacketType::EventConfirm,
            6 => PacketType::EventUnknown,
            7 => PacketType::Event,
            _ => return None,
        })
    }

    fn is_named(self) -> bool {
        matches!(
            self,
            PacketType::CmdRequest | PacketType::EventRegister | PacketType::EventUnregister | PacketType::Event
        )
    }

    fn has_message(self) -> bool {
        matches!(self, PacketType::CmdRequest | PacketType::CmdResponse | PacketType::Event)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketType,
    /// Command or event name for the named packet types, empty otherwise.
    pub name: String,
    pub message: Message,
}

impl Packet {
    pub fn new(kind: PacketType, name: &str, message: Message) -> Self {
        Packet { kind, name: name.to_string(), message }
    }

    /// The full frame, length prefix included.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut body = vec![self.kind.code()];
        if self.kind.is_named() {
            let len = u8::try_from(self.name.len())
                .map_err(|_| ViciError::Protocol(format!("packet name too long: {:.40}", self.name)))?;
            body.push(len);
            body.extend_from_slice(self.name.as_bytes());
        }
        if self.kind.has_message() {
            self.message.encode_into(&mut body)?;
        }
        if body.len() > MAX_PACKET {
            return Err(ViciError::Protocol(format!("packet of {} bytes exceeds {MAX_PACKET}", body.len())));
        }
        let len = u32::try_from(body.len()).map_err(|_| ViciError::Protocol("packet too large".into()))?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        Ok(frame)
    }

    /// Decodes one packet body (the bytes after the length prefix).
    pub fn decode(body: &[u8]) -> Result<Packet> {
        let mut r = Reader { bytes: body, pos: 0 };
        let code = r.byte().ok_or_else(|| ViciError::Protocol("empty packet".into()))?;
        let kind = PacketType::from_code(code).ok_or_else(|| ViciError::Protocol(format!("packet type {code}")))?;
        let name = if kind.is_named() { r.name()? } else { String::new() };
        let rest = r.rest();
        let message = if kind.has_message() {
            Message::decode(rest)?
        } else if rest.is_empty() {
            Message::new()
        } else {
            return Err(ViciError::Protocol(format!("{kind:?} packet with trailing bytes")));
        };
        Ok(Packet { kind, name, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `version` request as the README's framing describes it: length 9, type 0, name length 7, name, no message.
    #[test]
    fn version_request_frame() {
        let frame = Packet::new(PacketType::CmdRequest, "version", Message::new()).encode().expect("encodes");
        assert_eq!(frame, [&[0u8, 0, 0, 9, 0, 7][..], b"version"].concat());
    }

    #[test]
    fn round_trips_every_packet_type() {
        let msg = Message::new().with("success", "yes");
        for kind in [
            PacketType::CmdRequest,
            PacketType::CmdResponse,
            PacketType::CmdUnknown,
            PacketType::EventRegister,
            PacketType::EventUnregister,
            PacketType::EventConfirm,
            PacketType::EventUnknown,
            PacketType::Event,
        ] {
            let name = if kind.is_named() { "list-sa" } else { "" };
            let message = if kind.has_message() { msg.clone() } else { Message::new() };
            let p = Packet::new(kind, name, message);
            let frame = p.encode().expect("encodes");
            let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
            assert_eq!(len, frame.len() - 4);
            assert_eq!(Packet::decode(&frame[4..]).expect("decodes"), p);
        }
    }

    #[test]
    fn response_frame_from_the_spec() {
        // CMD_RESPONSE carrying `success = yes`.
        let body = [&[1u8, 3, 7][..], b"success", &[0, 3], b"yes"].concat();
        let p = Packet::decode(&body).expect("decodes");
        assert_eq!(p.kind, PacketType::CmdResponse);
        assert_eq!(p.message.get_str("success"), Some("yes"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Packet::decode(&[]).is_err());
        assert!(Packet::decode(&[42]).is_err());
        assert!(Packet::decode(&[5, 1]).is_err(), "EVENT_CONFIRM carries nothing");
        assert!(Packet::decode(&[0, 9, b'x']).is_err(), "truncated name");
    }
}
