//! The console's two pictures, drawn on the server as SVG (no script, no external assets): a gateway's topology and
//! its tunnels' state over time. Colours carry no meaning alone: every state is also written out.

use maud::{html, Markup};
use openvgw_core::model::TunnelState;

use crate::history::{spans, Track};

/// What the topology shows of one tunnel.
pub struct TopologyTunnel {
    pub label: String,
    pub gateway_address: String,
    pub peer_address: String,
    pub peer_networks: Vec<String>,
    pub up: bool,
    pub state: &'static str,
}

pub fn state_word(s: TunnelState) -> &'static str {
    match s {
        TunnelState::IkeSaNotEstablished => "down",
        TunnelState::IkeSaEstablished => "IKE up",
        TunnelState::IpsecSaNotEstablished => "IPsec down",
        TunnelState::IpsecSaEstablished => "up",
    }
}

const ROW: i64 = 64;

/// Text cut to fit a box (ids run long); the whole of it is in the element's tooltip.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// VPC → gateway → one line per tunnel → the customer gateway and its networks.
pub fn topology(vpc: &str, gateway: &str, inside: &str, tunnels: &[TopologyTunnel]) -> Markup {
    let rows = tunnels.len().max(1) as i64;
    let height = 40 + rows * ROW;
    let mid = height / 2;
    html! {
        svg.topology xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 720 " (height)} role="img"
            aria-labelledby="topology-title" {
            title #topology-title { "Topology of " (gateway) ": VPC " (vpc) ", " (tunnels.len()) " tunnel(s)" }
            rect.box x="8" y=(mid - 30) width="150" height="60" rx="6" {}
            text x="83" y=(mid - 6) text-anchor="middle" { "VPC" }
            text.small x="83" y=(mid + 14) text-anchor="middle" { title { (vpc) } (clip(vpc, 22)) }
            line.link x1="158" y1=(mid) x2="218" y2=(mid) {}
            rect.box.gateway x="218" y=(mid - 30) width="170" height="60" rx="6" {}
            text x="303" y=(mid - 6) text-anchor="middle" { "VPN gateway" }
            text.small x="303" y=(mid + 14) text-anchor="middle" { title { (gateway) } (inside) }
            @for (i, t) in tunnels.iter().enumerate() {
                @let y = 20 + i as i64 * ROW + ROW / 2;
                line class=(if t.up { "tunnel up" } else { "tunnel down" }) x1="388" y1=(mid) x2="520" y2=(y) {}
                text.small x="454" y=((mid + y) / 2 - 8) text-anchor="middle" { (t.gateway_address) }
                text.small x="454" y=((mid + y) / 2 + 16) text-anchor="middle" { (t.state) }
                rect.box x="520" y=(y - 24) width="192" height="48" rx="6" {}
                text x="616" y=(y - 4) text-anchor="middle" { title { (t.label) } (t.peer_address) " · " (clip(&t.label, 10)) }
                text.small x="616" y=(y + 14) text-anchor="middle" { (clip(&t.peer_networks.join(", "), 30)) }
            }
        }
    }
}

/// One row per tunnel across the last hour (or since sampling began), a span per state.
pub fn state_chart(tracks: &[(String, Track)], from: i64, to: i64) -> Markup {
    const LEFT: i64 = 180;
    const WIDTH: i64 = 520;
    let span_ms = (to - from).max(1);
    let x = |t: i64| LEFT + (t - from) * WIDTH / span_ms;
    let height = 30 + tracks.len() as i64 * 28;
    let minutes = span_ms / 60_000;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 720 " (height)} role="img"
            aria-labelledby="chart-title" {
            title #chart-title { "Tunnel state over the last " (minutes) " minute(s)" }
            @for (i, (tunnel, track)) in tracks.iter().enumerate() {
                @let y = 10 + i as i64 * 28;
                text.small x="4" y=(y + 14) { (tunnel) }
                @for (start, end, state) in spans(track, from, to) {
                    rect class=(if state == TunnelState::IpsecSaEstablished { "span up" } else { "span down" })
                        x=(x(start)) y=(y) width=((x(end) - x(start)).max(1)) height="18" {
                        title { (state_word(state)) }
                    }
                }
            }
            text.small x=(LEFT) y=(height - 4) { "-" (minutes) " min" }
            text.small x=(LEFT + WIDTH) y=(height - 4) text-anchor="end" { "now" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_escape_what_they_show_and_say_the_state_in_words() {
        let t = TopologyTunnel {
            label: "<b>peer</b>".into(),
            gateway_address: "192.0.2.1".into(),
            peer_address: "198.51.100.1".into(),
            peer_networks: vec!["10.0.0.0/8".into()],
            up: true,
            state: "up",
        };
        let svg = topology("vpc-1", "vpn-1", "10.0.0.2", &[t]).into_string();
        assert!(svg.contains("&lt;b&gt;peer&lt;/b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains(">192.0.2.1<") && svg.contains(">up<") && svg.contains("tunnel up"), "{svg}");
        assert_eq!(clip("vco-xydifny5208k17e5c2hlvmvg", 10), "vco-xydif…");
        let mut track = Track::default();
        track.changes.push_back((0, TunnelState::IkeSaNotEstablished));
        track.changes.push_back((500, TunnelState::IpsecSaEstablished));
        let chart = state_chart(&[("tun-1".into(), track)], 0, 1_000).into_string();
        assert!(chart.contains("span down") && chart.contains("span up") && chart.contains(">up<"), "{chart}");
    }
}
