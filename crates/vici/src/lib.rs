//! openvgw-vici: a small, dependency-light implementation of strongSwan's VICI protocol.
//!
//! VICI is charon's control interface: length-prefixed packets over a unix socket carrying messages built from
//! eight element types (sections, key/values, lists). This crate has the codec ([`Message`], [`Packet`]) and an
//! async [`Client`] with plain requests, streamed requests (`list-sas`, `list-conns`, `initiate` with
//! `control-log`) and event subscriptions (`ike-updown`, `child-updown`, ...).
//!
//! Protocol reference: strongSwan `src/libcharon/plugins/vici/README.md`.

mod client;
mod message;
mod packet;

pub use client::{check_success, Client, Event};
pub use message::{Element, Message};
pub use packet::{Packet, PacketType};

#[derive(Debug, thiserror::Error)]
pub enum ViciError {
    #[error("VICI socket I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("VICI protocol violation: {0}")]
    Protocol(String),
    #[error("charon does not know the VICI command {0:?}")]
    UnknownCommand(String),
    #[error("charon does not know the VICI event {0:?}")]
    UnknownEvent(String),
    /// The command ran but answered `success = no`.
    #[error("VICI command {command} failed: {message}")]
    CommandFailed { command: String, message: String },
}

pub type Result<T> = std::result::Result<T, ViciError>;
