//! Tunnel state over time, for the console's chart: the reconciler stores only the current state, so the console
//! samples it and keeps the changes of the last hour in memory (per process: a replica that just started shows a
//! shorter history, which the chart says).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use openvgw_core::model::TunnelState;

/// How far back the chart looks.
pub const WINDOW_MS: i64 = 3600 * 1000;
/// Changes kept per tunnel at most (a flapping tunnel cannot grow memory without bound).
const MAX_CHANGES: usize = 512;

/// One tunnel's changes, oldest first: (since, state).
#[derive(Debug, Clone, Default)]
pub struct Track {
    pub connection_id: String,
    pub gateway_id: String,
    pub changes: VecDeque<(i64, TunnelState)>,
}

#[derive(Debug, Default)]
pub struct History {
    tracks: Mutex<BTreeMap<String, Track>>,
    /// When sampling began (the chart starts there when that is within the window).
    started_ms: Mutex<Option<i64>>,
}

impl History {
    /// Records one sample of every tunnel: (gateway, tunnel, connection, state). Tunnels no longer present go.
    pub fn record(&self, now_ms: i64, sample: &[(String, String, String, TunnelState)]) {
        let mut tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        tracks.retain(|tunnel, _| sample.iter().any(|(_, t, _, _)| t == tunnel));
        for (gateway, tunnel, connection, state) in sample {
            let track = tracks.entry(tunnel.clone()).or_insert_with(|| Track {
                connection_id: connection.clone(),
                gateway_id: gateway.clone(),
                changes: VecDeque::new(),
            });
            if track.changes.back().map(|(_, s)| s) != Some(state) {
                track.changes.push_back((now_ms, *state));
            }
            // Changes before the window matter only as the state the window starts in.
            while track.changes.len() > 1 && track.changes.get(1).is_some_and(|(at, _)| *at <= now_ms - WINDOW_MS) {
                track.changes.pop_front();
            }
            while track.changes.len() > MAX_CHANGES {
                track.changes.pop_front();
            }
        }
        self.started_ms.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(now_ms);
    }

    /// The tracks of one gateway's tunnels, by tunnel id.
    pub fn of_gateway(&self, gateway_id: &str) -> Vec<(String, Track)> {
        let tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        tracks.iter().filter(|(_, t)| t.gateway_id == gateway_id).map(|(id, t)| (id.clone(), t.clone())).collect()
    }

    pub fn started_ms(&self) -> Option<i64> {
        *self.started_ms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The spans of a track inside `[from, to]`: (start, end, state).
pub fn spans(track: &Track, from: i64, to: i64) -> Vec<(i64, i64, TunnelState)> {
    let mut out = Vec::new();
    let changes: Vec<&(i64, TunnelState)> = track.changes.iter().collect();
    for (i, (at, state)) in changes.iter().enumerate() {
        let end = changes.get(i + 1).map_or(to, |(next, _)| *next).min(to);
        let start = (*at).max(from);
        if end > start {
            out.push((start, end, *state));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: TunnelState) -> Vec<(String, String, String, TunnelState)> {
        vec![("gw".into(), "t1".into(), "c1".into(), state)]
    }

    #[test]
    fn only_changes_are_kept_and_gone_tunnels_are_forgotten() {
        let h = History::default();
        h.record(1_000, &sample(TunnelState::IkeSaNotEstablished));
        h.record(2_000, &sample(TunnelState::IkeSaNotEstablished));
        h.record(3_000, &sample(TunnelState::IpsecSaEstablished));
        let [(id, track)] = h.of_gateway("gw").try_into().expect("one track");
        assert_eq!(id, "t1");
        assert_eq!(track.changes.len(), 2, "a repeated state is not a change");
        assert_eq!(
            spans(&track, 0, 5_000),
            vec![(1_000, 3_000, TunnelState::IkeSaNotEstablished), (3_000, 5_000, TunnelState::IpsecSaEstablished)]
        );
        assert_eq!(spans(&track, 2_000, 4_000)[0], (2_000, 3_000, TunnelState::IkeSaNotEstablished), "clipped");
        h.record(4_000, &[]);
        assert!(h.of_gateway("gw").is_empty());
        assert_eq!(h.started_ms(), Some(1_000));
    }

    #[test]
    fn the_window_keeps_the_state_it_starts_in_and_memory_is_bounded() {
        let h = History::default();
        let states = [TunnelState::IkeSaNotEstablished, TunnelState::IpsecSaEstablished];
        for i in 0..2_000i64 {
            h.record(i * 10, &sample(states[(i % 2) as usize]));
        }
        let track = h.of_gateway("gw").remove(0).1;
        assert!(track.changes.len() <= MAX_CHANGES);
        let late = WINDOW_MS * 3;
        h.record(late, &sample(TunnelState::IpsecSaEstablished));
        let track = h.of_gateway("gw").remove(0).1;
        assert_eq!(spans(&track, late - WINDOW_MS, late + 1).len(), 1, "{track:?}");
    }
}
