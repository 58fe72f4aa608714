//! The plan's backend commands (nodes/commands.ts) for a rust-libp2p peer driven by chiral-sim, with rust-libp2p's
//! Kademlia doing the discovery: the dispatch, what the node says about itself (info, inspect, metrics) and the
//! state the commands share. Connect is in connect.rs, the health check and monitor in health.rs, the DHT test,
//! verification and lookups in discovery.rs. What rust-libp2p cannot tell is said, never guessed (as interop/go).

use crate::args::Args;
use crate::control::{CommandFuture, Commands};
use crate::events::{now_ms, EventLog};
use crate::health::Monitor;
use crate::node::Node;
use crate::request::{CmdError, Req};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The plan's durations as the harness computed them for this node (already scaled), real ms; the plan's defaults
/// (nodes/config.ts) for fields it did not send. Unknown fields are ignored: the harness sends its whole timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Timing {
    pub connection_timeout_ms: u64,
    pub health_check_interval_ms: u64,
    pub health_ping_timeout_ms: u64,
    pub health_history_size: usize,
    pub uptime_window_ms: u64,
    pub healthy_latency_ms: u64,
    pub degraded_latency_ms: u64,
    pub high_latency_consecutive_checks: u32,
    pub unreachable_alert_ms: u64,
    pub discovery_verification_delay_ms: u64,
    pub discovery_poll_interval_ms: u64,
    pub bidirectional_discovery_timeout_ms: u64,
    pub dht_query_timeout_ms: u64,
    pub peer_dial_timeout_ms: u64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            connection_timeout_ms: 10_000,
            health_check_interval_ms: 30_000,
            health_ping_timeout_ms: 5_000,
            health_history_size: 20,
            uptime_window_ms: 3_600_000,
            healthy_latency_ms: 200,
            degraded_latency_ms: 500,
            high_latency_consecutive_checks: 3,
            unreachable_alert_ms: 120_000,
            discovery_verification_delay_ms: 3_000,
            discovery_poll_interval_ms: 2_000,
            bidirectional_discovery_timeout_ms: 15_000,
            dht_query_timeout_ms: 10_000,
            peer_dial_timeout_ms: 10_000,
        }
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The plan's categories and texts (nodes/errors.ts).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Categorized {
    pub category: &'static str,
    pub message: &'static str,
    pub suggested_action: &'static str,
    pub detail: String,
}

pub fn categorize(category: &'static str, detail: impl Into<String>) -> Categorized {
    let (message, suggested_action) = match category {
        "timeout" => ("Bootstrap not responding - may be down", "Try again later or check internet connection"),
        "refused" => ("Bootstrap server not available", "The bootstrap is not accepting connections; try another bootstrap or try again later"),
        "unreachable" => ("Check your internet connection", "The bootstrap address cannot be reached from this machine; check your network connection and the bootstrap address"),
        "already-connected" => ("DHT already running on this port", "Stop the other DHT instance or use a different port, then connect again"),
        "busy" => ("Bootstrap is busy - retrying with a longer timeout", "Wait for the retry; if the bootstrap stays busy, try another bootstrap later"),
        "protocol" => ("The remote does not speak the DHT protocol - wrong protocol or not a bootstrap", "Check that the address points to a bootstrap node running the same DHT protocol version"),
        "rejected" => ("Bootstrap closed the connection after identify - this client was not admitted", "The bootstrap is up but drops this client once it learns its agent version or protocols (an admission policy?); check what it admits against this node's agentVersion and DHT protocol, or try another bootstrap"),
        _ => ("Could not connect to the bootstrap", "Try again; if the problem persists, check the event log for details"),
    };
    Categorized { category, message, suggested_action, detail: detail.into() }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: usize,
    pub bootstrap: String,
    pub timeout_ms: u64,
    pub started_at: i64,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Categorized>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DialFailure {
    pub peer_id: String,
    pub category: &'static str,
    pub detail: String,
    pub at: i64,
}

/// What the commands share (under one lock, held only briefly, never across an await).
#[derive(Default)]
pub struct State {
    pub bootstrap_ids: BTreeSet<libp2p::PeerId>,
    pub current_bootstrap: Option<String>,
    pub connected_at: i64,
    pub first_walk_at: i64,
    pub attempts: Vec<Attempt>,
    pub last_error: Option<Categorized>,
    pub dial_failures: Vec<DialFailure>,
    pub discovered: BTreeSet<libp2p::PeerId>,
    pub last_discovery_at: i64,
    pub queries: u64,
    pub queries_ok: u64,
    pub last_write: i64,
    pub last_read: i64,
    pub routing_adds: u64,
}

pub struct Peer {
    pub name: String,
    pub args: Args,
    pub t: Timing,
    pub node: Node,
    pub events: Arc<EventLog>,
    pub state: Mutex<State>,
    pub monitor: Monitor,
    pub stop: mpsc::Sender<String>,
    /// This peer, for the tasks a command leaves running (the health monitor).
    pub this: std::sync::Weak<Peer>,
}

/// Every command of the contract (nodes/commands.ts), so one this node does not serve answers not-supported and a
/// misspelt one unknown-command.
pub const CONTRACT_COMMANDS: &[&str] = &[
    "info", "inspect", "connectWithTimeout", "checkBootstrapHealth", "startHealthMonitoring", "stopHealthMonitoring", "getHealth",
    "getDhtRoutingTableSize", "refreshRoutingTable", "testPeerDiscovery", "listDiscoveredPeerIds", "verifyPeerReachable", "findPeer",
    "getProviderRecords", "provide", "shareFile", "downloadFile", "verifyPeerDiscovery", "waitForBidirectionalDiscovery", "getMetrics",
    "shutdown",
];

pub const VERSIONS: (&str, &str, &str) = ("chiral-rust-node 0.1.0", "rust-libp2p 0.54.1", "libp2p-kad 0.46.2");

fn not_supported(name: &str) -> CmdError {
    let why = match name {
        "shareFile" | "downloadFile" => "file transfer is chiral-sim's own protocol, which a rust-libp2p node does not speak",
        _ => "not implemented by this reference node",
    };
    CmdError { code: "not-supported", message: format!("command \"{name}\" is not implemented by chiral-rust-node (rust-libp2p): {why}"), field: None }
}

impl Commands for Peer {
    fn call(self: Arc<Self>, name: &str, body: Vec<u8>) -> CommandFuture {
        let Some(&name) = CONTRACT_COMMANDS.iter().find(|c| **c == name) else {
            let e = CmdError { code: "unknown-command", message: format!("unknown command {name:?}; known commands: {}", CONTRACT_COMMANDS.join(", ")), field: None };
            return Box::pin(async move { Err(e) });
        };
        Box::pin(async move { self.dispatch(name, &body).await })
    }
}

impl Peer {
    pub fn me(&self) -> Arc<Peer> {
        self.this.upgrade().expect("a peer's commands run while it exists")
    }

    async fn dispatch(self: Arc<Self>, name: &'static str, body: &[u8]) -> Result<Value, CmdError> {
        let none = || Req::parse(name, body, &[]);
        Ok(match name {
            "info" => {
                none()?;
                self.info().await
            }
            "inspect" => {
                none()?;
                self.inspect().await
            }
            "connectWithTimeout" => {
                let req = Req::parse(name, body, &["bootstrapAddrs", "timeoutMs"])?;
                let timeout = match req.int("timeoutMs")? {
                    Some(t) if !(5000..=30000).contains(&t) => {
                        return Err(CmdError::bad_request("timeoutMs", "connectWithTimeout: field \"timeoutMs\": must be 5000–30000 (the plan allows 5–30 s)".into()))
                    }
                    Some(t) => t as u64,
                    None => self.t.connection_timeout_ms,
                };
                let addrs = match req.strings("bootstrapAddrs")? {
                    Some(a) if a.is_empty() => return Err(CmdError::bad_request("bootstrapAddrs", "connectWithTimeout: field \"bootstrapAddrs\": give at least one address".into())),
                    Some(a) => a,
                    None => self.args.bootstrap.clone(),
                };
                if addrs.is_empty() {
                    return Err(CmdError::bad_request("bootstrapAddrs", "connectWithTimeout: no bootstrap address: give bootstrapAddrs or start the node with --bootstrap".into()));
                }
                for (i, a) in addrs.iter().enumerate() {
                    req.multiaddr(&format!("bootstrapAddrs.{i}"), a)?;
                }
                self.connect(&addrs, timeout).await
            }
            "checkBootstrapHealth" => {
                let addr = self.address_of(name, body)?;
                json!(self.check_health(&addr).await)
            }
            "startHealthMonitoring" => {
                let addr = self.address_of(name, body)?;
                Monitor::start_on(&self, addr);
                self.monitor.state(&self.t)
            }
            "stopHealthMonitoring" => {
                none()?;
                self.monitor.halt(&self.events);
                self.monitor.state(&self.t)
            }
            "getHealth" => {
                none()?;
                self.monitor.state(&self.t)
            }
            "getDhtRoutingTableSize" => {
                none()?;
                self.routing_size().await
            }
            "refreshRoutingTable" => {
                none()?;
                self.refresh().await;
                self.routing_size().await
            }
            "testPeerDiscovery" => {
                let req = Req::parse(name, body, &["testContent"])?;
                let content = req.string("testContent")?.unwrap_or_else(|| "discovery-test".into());
                self.test_discovery(&content).await
            }
            "listDiscoveredPeerIds" => {
                none()?;
                let (_, others) = self.routing_peers().await;
                json!({ "peerIds": ids(&others) })
            }
            "verifyPeerReachable" => {
                let req = Req::parse(name, body, &["peerId", "fresh"])?;
                let id = req.peer_id("peerId")?.ok_or_else(|| CmdError::bad_request("peerId", "verifyPeerReachable: field \"peerId\": required".into()))?;
                let fresh = req.bool("fresh")?.unwrap_or(false);
                self.verify_reachable(id, fresh).await
            }
            "findPeer" => {
                let req = Req::parse(name, body, &["peerId", "via"])?;
                let id = req.peer_id("peerId")?.ok_or_else(|| CmdError::bad_request("peerId", "findPeer: field \"peerId\": required".into()))?;
                let via = req.peer_id("via")?;
                self.find_peer(id, via).await
            }
            "getProviderRecords" => {
                let key = cid_request(name, body)?;
                self.provider_records(key).await
            }
            "provide" => {
                let key = cid_request(name, body)?;
                self.provide(key).await
            }
            "verifyPeerDiscovery" => {
                none()?;
                self.verify_discovery().await
            }
            "waitForBidirectionalDiscovery" => {
                let req = Req::parse(name, body, &["peerIds", "timeoutMs"])?;
                let named = req.strings("peerIds")?;
                let mut want = Vec::new();
                for (i, s) in named.iter().flatten().enumerate() {
                    want.push(s.parse().map_err(|_| {
                        CmdError::bad_request(&format!("peerIds.{i}"), format!("waitForBidirectionalDiscovery: field \"peerIds.{i}\": not a peer ID"))
                    })?);
                }
                let timeout = match req.int("timeoutMs")? {
                    Some(t) if t < 1 => return Err(CmdError::bad_request("timeoutMs", "waitForBidirectionalDiscovery: field \"timeoutMs\": must be at least 1".into())),
                    Some(t) => t as u64,
                    None => self.t.bidirectional_discovery_timeout_ms,
                };
                self.wait_bidirectional(want, named.is_none(), timeout).await
            }
            "getMetrics" => {
                none()?;
                self.metrics().await
            }
            "shutdown" => {
                none()?;
                // Answer first, then stop: the harness waits for the exit.
                let stop = self.stop.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = stop.send("shutdown command".into()).await;
                });
                json!({ "ok": true })
            }
            other => return Err(not_supported(other)),
        })
    }

    /// A command on one bootstrap ({ address? }), by default the one connected to (or the first configured).
    fn address_of(&self, command: &'static str, body: &[u8]) -> Result<String, CmdError> {
        let req = Req::parse(command, body, &["address"])?;
        let addr = match req.string("address")? {
            Some(a) => a,
            None => self.bootstrap_address().ok_or_else(|| CmdError::bad_request("address", format!("{command}: not connected to a bootstrap; give an address")))?,
        };
        req.multiaddr("address", &addr)?;
        Ok(addr)
    }

    pub fn bootstrap_address(&self) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.current_bootstrap.clone().or_else(|| self.args.bootstrap.first().cloned())
    }

    pub fn query_done(&self, ok: bool) {
        let mut s = self.state.lock().unwrap();
        s.queries += 1;
        if ok {
            s.queries_ok += 1;
        }
    }

    /// Every routing-table entry, and those that are not bootstraps.
    pub async fn routing_peers(&self) -> (Vec<libp2p::PeerId>, Vec<libp2p::PeerId>) {
        let all = self.node.routing_table().await;
        let s = self.state.lock().unwrap();
        let others = all.iter().filter(|p| !s.bootstrap_ids.contains(p)).copied().collect();
        (all, others)
    }

    async fn routing_size(&self) -> Value {
        let (all, others) = self.routing_peers().await;
        json!({ "size": all.len(), "peers": others.len() })
    }

    /// A Kademlia bootstrap (the walk that fills the table), waited for within the DHT query deadline.
    pub async fn refresh(&self) {
        self.walk(ms(self.t.dht_query_timeout_ms)).await
    }

    /// A Kademlia bootstrap, waited for at most `limit`.
    pub async fn walk(&self, limit: Duration) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let watch = Box::new(move |_: &libp2p::kad::QueryResult, last: bool| {
            if last {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
            last
        });
        if self.node.query(|k| k.bootstrap().ok(), watch).await {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }

    /// The routing-table events and the discovery metrics, from main's event loop.
    pub fn on_routing_update(&self, peer: libp2p::PeerId, is_new: bool, evicted: Option<libp2p::PeerId>, size: usize) {
        if let Some(old) = evicted {
            self.events.emit("routing:remove", json!({ "peerId": old.to_string(), "size": size }));
        }
        if !is_new {
            return;
        }
        {
            let mut s = self.state.lock().unwrap();
            if !s.bootstrap_ids.contains(&peer) {
                s.discovered.insert(peer);
                s.last_discovery_at = now_ms();
            }
            if s.first_walk_at == 0 && s.connected_at != 0 {
                s.first_walk_at = now_ms();
            }
            s.routing_adds += 1;
        }
        self.events.emit("routing:add", json!({ "peerId": peer.to_string(), "size": size }));
    }

    pub fn multiaddrs(listen: &[libp2p::Multiaddr], local: libp2p::PeerId) -> Vec<String> {
        listen.iter().map(|a| format!("{a}/p2p/{local}")).collect()
    }

    async fn listen_addrs(&self) -> Vec<String> {
        let local = self.node.local;
        let listen = self.node.swarm(|s| s.listeners().cloned().collect::<Vec<_>>()).await;
        Peer::multiaddrs(&listen, local)
    }

    async fn info(&self) -> Value {
        json!({
            "name": self.name, "role": "peer", "peerId": self.node.local.to_string(), "multiaddrs": self.listen_addrs().await,
            "dhtProtocol": self.args.dht_protocol,
            "versions": { "node": VERSIONS.0, "libp2p": VERSIONS.1, "kadDht": VERSIONS.2 },
        })
    }

    async fn inspect(&self) -> Value {
        let (all, _) = self.routing_peers().await;
        let server = self.node.net().kad_server;
        let local = self.node.local;
        let multiaddrs = self.listen_addrs().await;
        // What this node serves: identify (and its push), ping, and the DHT in server mode (rust-libp2p's Kademlia
        // does not accept inbound DHT streams in client mode).
        let mut protocols = vec!["/ipfs/id/1.0.0".to_string(), "/ipfs/id/push/1.0.0".into(), "/ipfs/ping/1.0.0".into()];
        if server {
            protocols.push(self.args.dht_protocol.clone());
        }
        protocols.sort();
        let (connections, known) = {
            let n = self.node.net();
            let connections: Vec<Value> = n
                .conns
                .values()
                .map(|c| {
                    let remote = if c.remote.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_))) { c.remote.to_string() } else { format!("{}/p2p/{}", c.remote, c.peer) };
                    json!({ "peerId": c.peer.to_string(), "remoteAddr": remote, "direction": if c.outbound { "outbound" } else { "inbound" },
                            "status": "open", "limited": false, "openedAt": c.opened_at })
                })
                .collect();
            let known: Vec<Value> = n
                .identified
                .iter()
                .filter(|(id, _)| **id != local)
                .map(|(id, i)| {
                    let addrs: Vec<String> = i.listen.iter().map(|a| a.to_string()).collect();
                    let mapped: Vec<String> = i.listen.iter().filter(|a| !self.args.routable_only || crate::addr::is_routable(a)).map(|a| a.to_string()).collect();
                    let mut protos = i.protocols.clone();
                    protos.sort();
                    json!({ "peerId": id.to_string(), "addresses": addrs, "mappedAddresses": mapped, "protocols": protos, "identified": true })
                })
                .collect();
            (connections, known)
        };
        let s = self.state.lock().unwrap();
        json!({
            "name": self.name, "role": "peer", "peerId": local.to_string(), "running": true, "multiaddrs": multiaddrs,
            "dhtMode": if server { "server" } else { "client" },
            "dhtProtocol": self.args.dht_protocol, "addressMapper": if self.args.routable_only { "removePrivate" } else { "passthrough" },
            "protocols": protocols, "routingTable": ids(&all), "connections": connections, "knownPeers": known,
            "discoveredPeerIds": ids(&s.discovered.iter().copied().collect::<Vec<_>>()),
            // rust-libp2p's Kademlia admits a peer on the protocols its connection handler confirmed, without an
            // admission ping: no admission ping can fail.
            "pingFailures": [], "busyRefusals": 0, "dialFailures": s.dial_failures,
        })
    }

    async fn metrics(&self) -> Value {
        let (all, _) = self.routing_peers().await;
        let s = self.state.lock().unwrap();
        let nullable = |v: i64| if v == 0 { Value::Null } else { json!(v) };
        let rate = if s.queries > 0 { json!(s.queries_ok as f64 / s.queries as f64) } else { Value::Null };
        let walk = if s.first_walk_at != 0 && s.connected_at != 0 { json!((s.first_walk_at - s.connected_at).max(0)) } else { Value::Null };
        json!({
            "connectionAttempts": s.attempts, "lastConnectionError": s.last_error, "lastPeerDiscoveryTime": nullable(s.last_discovery_at),
            "totalPeersDiscovered": s.discovered.len(), "discoveryQueries": s.queries, "discoveryQueriesSucceeded": s.queries_ok,
            "discoverySuccessRate": rate, "kadRoutingTableSize": all.len(), "lastSuccessfulDhtWrite": nullable(s.last_write),
            "lastSuccessfulDhtRead": nullable(s.last_read), "bootstrapWalkDurationMs": walk,
        })
    }
}

pub fn ids(list: &[libp2p::PeerId]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|p| p.to_string()).collect();
    out.sort();
    out
}

fn cid_request(command: &'static str, body: &[u8]) -> Result<Vec<u8>, CmdError> {
    let req = Req::parse(command, body, &["cid"])?;
    let cid = req.string("cid")?.ok_or_else(|| CmdError::bad_request("cid", format!("{command}: field \"cid\": required")))?;
    crate::kadwire::cid_multihash(&cid).ok_or_else(|| CmdError::bad_request("cid", format!("{command}: field \"cid\": not a CID; expected e.g. bafkrei…")))
}
