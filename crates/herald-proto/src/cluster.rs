//! The JSON of `cluster` (`docs/protocol.md` §17):
//! `{"node":N,"role":…,"leader":N,"term":…,"nodes":[{"id","raft","advertise","role","match_index"}]}`.
//!
//! Roles are text (`leader`, `follower`, `candidate`, `learner`, ...), so a
//! node of a newer version with another role still reads. `leader` is
//! absent (or `null`) while there is none; `match_index` is what the
//! leader knows of each node, absent on a follower's view.

use serde::{Deserialize, Serialize};

/// The reply to `cluster`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This node's id.
    pub node: u64,
    /// This node's role.
    pub role: String,
    /// The leader's id, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    /// The current Raft term.
    pub term: u64,
    /// Every member.
    #[serde(default)]
    pub nodes: Vec<ClusterNode>,
}

/// One member of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// Node id.
    pub id: u64,
    /// Its Raft address, `HOST:PORT`.
    pub raft: String,
    /// Its client address, `HOST:PORT` (what `not_leader` names).
    pub advertise: String,
    /// Its role.
    pub role: String,
    /// The last log index known to match the leader's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_index: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_a_leaderless_view() {
        let status = ClusterStatus {
            node: 1,
            role: "leader".into(),
            leader: Some(1),
            term: 3,
            nodes: vec![ClusterNode {
                id: 2,
                raft: "10.0.0.2:9000".into(),
                advertise: "10.0.0.2:8000".into(),
                role: "follower".into(),
                match_index: Some(41),
            }],
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"node":1,"role":"leader","leader":1,"term":3,"nodes":[{"id":2,"raft":"10.0.0.2:9000","advertise":"10.0.0.2:8000","role":"follower","match_index":41}]}"#
        );
        assert_eq!(
            serde_json::from_str::<ClusterStatus>(&json).unwrap(),
            status
        );
        let none: ClusterStatus = serde_json::from_str(
            r#"{"node":2,"role":"candidate","leader":null,"term":4,"nodes":[]}"#,
        )
        .unwrap();
        assert_eq!(none.leader, None);
    }
}
