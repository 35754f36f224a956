//! Async VICI client over a unix socket.
//!
//! One connection carries requests and the events registered on it; events that arrive while a request is in
//! flight are queued and handed out by [`Client::next_event`]. Requests are strictly sequential (charon answers in
//! order), so the client needs `&mut self` and no background task.

use std::collections::VecDeque;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::packet::MAX_PACKET;
use crate::{Message, Packet, PacketType, Result, ViciError};

/// An event charon pushed (`ike-updown`, `child-updown`, `log`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub message: Message,
}

pub struct Client {
    stream: UnixStream,
    queued: VecDeque<Event>,
}

impl Client {
    pub async fn connect(path: impl AsRef<Path>) -> Result<Client> {
        Ok(Client { stream: UnixStream::connect(path).await?, queued: VecDeque::new() })
    }

    /// A plain command: one request, one response. The response is returned as is (callers decide whether a
    /// `success` key matters; see [`Client::command`]).
    pub async fn request(&mut self, command: &str, message: &Message) -> Result<Message> {
        self.send(&Packet::new(PacketType::CmdRequest, command, message.clone())).await?;
        self.await_response(command, None, &mut |_| {}).await
    }

    /// Like [`Client::request`], but turns `success = no` into [`ViciError::CommandFailed`].
    pub async fn command(&mut self, command: &str, message: &Message) -> Result<Message> {
        let response = self.request(command, message).await?;
        check_success(command, response)
    }

    /// A streamed command (`list-sas` with `list-sa`, `list-conns` with `list-conn`, `initiate` with
    /// `control-log`, ...): registers `event` for the duration of the request and passes every such event to
    /// `on_event` before returning the final response.
    pub async fn streamed(
        &mut self,
        command: &str,
        event: &str,
        message: &Message,
        mut on_event: impl FnMut(Message) + Send,
    ) -> Result<Message> {
        self.register(event).await?;
        let sent = self.send(&Packet::new(PacketType::CmdRequest, command, message.clone())).await;
        let response = match sent {
            Ok(()) => self.await_response(command, Some(event), &mut on_event).await,
            Err(e) => Err(e),
        };
        // Unregister even after a failed command so the connection stays usable.
        let unregistered = self.unregister(event).await;
        let response = response?;
        unregistered?;
        Ok(response)
    }

    /// Collects the events of a streamed command, e.g. every `list-sa` of `list-sas`.
    pub async fn collect(&mut self, command: &str, event: &str, message: &Message) -> Result<(Vec<Message>, Message)> {
        let mut events = Vec::new();
        let response = self.streamed(command, event, message, |m| events.push(m)).await?;
        Ok((events, response))
    }

    /// Subscribes this connection to `event`; read them with [`Client::next_event`].
    pub async fn register(&mut self, event: &str) -> Result<()> {
        self.send(&Packet::new(PacketType::EventRegister, event, Message::new())).await?;
        self.await_confirm(event).await
    }

    pub async fn unregister(&mut self, event: &str) -> Result<()> {
        self.send(&Packet::new(PacketType::EventUnregister, event, Message::new())).await?;
        self.await_confirm(event).await
    }

    /// The next event of a registered kind (queued ones first).
    pub async fn next_event(&mut self) -> Result<Event> {
        if let Some(e) = self.queued.pop_front() {
            return Ok(e);
        }
        let p = self.read().await?;
        match p.kind {
            PacketType::Event => Ok(Event { name: p.name, message: p.message }),
            other => Err(ViciError::Protocol(format!("unexpected {other:?} while waiting for an event"))),
        }
    }

    async fn await_confirm(&mut self, event: &str) -> Result<()> {
        loop {
            let p = self.read().await?;
            match p.kind {
                PacketType::EventConfirm => return Ok(()),
                PacketType::EventUnknown => return Err(ViciError::UnknownEvent(event.to_string())),
                PacketType::Event => self.queued.push_back(Event { name: p.name, message: p.message }),
                other => return Err(ViciError::Protocol(format!("unexpected {other:?} after (un)registering"))),
            }
        }
    }

    async fn await_response(
        &mut self,
        command: &str,
        streamed_event: Option<&str>,
        on_event: &mut (dyn FnMut(Message) + Send),
    ) -> Result<Message> {
        loop {
            let p = self.read().await?;
            match p.kind {
                PacketType::CmdResponse => return Ok(p.message),
                PacketType::CmdUnknown => return Err(ViciError::UnknownCommand(command.to_string())),
                PacketType::Event if Some(p.name.as_str()) == streamed_event => on_event(p.message),
                PacketType::Event => self.queued.push_back(Event { name: p.name, message: p.message }),
                other => return Err(ViciError::Protocol(format!("unexpected {other:?} while waiting for {command}"))),
            }
        }
    }

    async fn send(&mut self, packet: &Packet) -> Result<()> {
        let frame = packet.encode()?;
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    async fn read(&mut self) -> Result<Packet> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(ViciError::Protocol(format!("packet length {len}")));
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).await?;
        Packet::decode(&body)
    }
}

/// Interprets the `success`/`errmsg` convention of charon's configuration commands.
pub fn check_success(command: &str, response: Message) -> Result<Message> {
    match response.get_str("success") {
        Some("yes") => Ok(response),
        _ => Err(ViciError::CommandFailed {
            command: command.to_string(),
            message: response.get_str("errmsg").unwrap_or("no error message").to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    async fn read_packet(s: &mut UnixStream) -> Packet {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.expect("len");
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.expect("body");
        Packet::decode(&body).expect("packet")
    }

    async fn write_packet(s: &mut UnixStream, p: Packet) {
        s.write_all(&p.encode().expect("encode")).await.expect("write");
    }

    /// A scripted fake charon: checks the client's framing and event handling without a daemon.
    #[tokio::test]
    async fn streamed_request_against_a_fake_daemon() {
        let dir = std::env::temp_dir().join(format!("openvgw-vici-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("fake.vici");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let reg = read_packet(&mut s).await;
            assert_eq!((reg.kind, reg.name.as_str()), (PacketType::EventRegister, "list-sa"));
            write_packet(&mut s, Packet::new(PacketType::EventConfirm, "", Message::new())).await;
            let req = read_packet(&mut s).await;
            assert_eq!((req.kind, req.name.as_str()), (PacketType::CmdRequest, "list-sas"));
            assert_eq!(req.message.get_str("ike"), Some("gw"));
            for n in ["a", "b"] {
                let sa = Message::new().with_section(n, Message::new().with("state", "ESTABLISHED"));
                write_packet(&mut s, Packet::new(PacketType::Event, "list-sa", sa)).await;
            }
            // An unrelated event in between must be queued, not lost.
            write_packet(&mut s, Packet::new(PacketType::Event, "ike-updown", Message::new().with("up", "yes"))).await;
            write_packet(&mut s, Packet::new(PacketType::CmdResponse, "", Message::new())).await;
            let unreg = read_packet(&mut s).await;
            assert_eq!(unreg.kind, PacketType::EventUnregister);
            write_packet(&mut s, Packet::new(PacketType::EventConfirm, "", Message::new())).await;
            let req = read_packet(&mut s).await;
            assert_eq!(req.name, "nonsense");
            write_packet(&mut s, Packet::new(PacketType::CmdUnknown, "", Message::new())).await;
            let req = read_packet(&mut s).await;
            assert_eq!(req.name, "load-conn");
            let nack = Message::new().with("success", "no").with("errmsg", "bad proposal");
            write_packet(&mut s, Packet::new(PacketType::CmdResponse, "", nack)).await;
        });
        let mut c = Client::connect(&path).await.expect("connect");
        let (events, _) = c.collect("list-sas", "list-sa", &Message::new().with("ike", "gw")).await.expect("list-sas");
        let names: Vec<&str> = events.iter().flat_map(|m| m.sections().map(|(n, _)| n)).collect();
        assert_eq!(names, ["a", "b"]);
        let queued = c.next_event().await.expect("queued event");
        assert_eq!(queued.name, "ike-updown");
        assert!(matches!(c.request("nonsense", &Message::new()).await, Err(ViciError::UnknownCommand(_))));
        match c.command("load-conn", &Message::new()).await {
            Err(ViciError::CommandFailed { message, .. }) => assert_eq!(message, "bad proposal"),
            other => panic!("expected CommandFailed, got {other:?}"),
        }
        server.await.expect("server");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
