//! The swarm as the control channel's commands see it: the swarm itself runs in main's event loop, so a command
//! reaches it through a closure sent to that loop, and reads what the loop observed (connections, dial errors,
//! identify answers, routing-table changes, Kademlia query results) from shared state. Raw streams (libp2p-stream)
//! are opened from the command's own task.

use crate::Behaviour;
use libp2p::{
    identify, kad,
    swarm::{ConnectionId, SwarmEvent},
    Multiaddr, PeerId, Stream, StreamProtocol, Swarm,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub type SwarmFn = Box<dyn FnOnce(&mut Swarm<Behaviour>) + Send>;
/// Called with each progress of a Kademlia query the node started; returns true once it needs no more.
pub type QueryWatcher = Box<dyn FnMut(&kad::QueryResult, bool) -> bool + Send>;

pub struct ConnInfo {
    pub peer: PeerId,
    pub remote: Multiaddr,
    pub outbound: bool,
    pub opened_at: i64,
}

pub struct Identified {
    pub agent: String,
    pub protocols: Vec<String>,
    pub listen: Vec<Multiaddr>,
}

/// What the event loop saw, for the commands to read.
#[derive(Default)]
pub struct NetState {
    pub conns: HashMap<ConnectionId, ConnInfo>,
    pub dial_errors: HashMap<ConnectionId, String>,
    /// Connections that were established and are closed again: a dial that raced an immediate close still counts
    /// as connected (and then closed), not as a dial that never ended.
    pub ended: std::collections::HashSet<ConnectionId>,
    pub identified: HashMap<PeerId, Identified>,
    /// When we last answered a peer's identify request: the moment that peer learnt our agent and protocols, when an
    /// admission policy decides.
    pub asked: HashMap<PeerId, Instant>,
    pub queries: HashMap<kad::QueryId, QueryWatcher>,
    /// Kademlia's mode as it last reported it (rust-libp2p does not expose it otherwise).
    pub kad_server: bool,
}

impl NetState {
    pub fn connection_to(&self, peer: &PeerId) -> Option<ConnectionId> {
        self.conns.iter().filter(|(_, c)| c.peer == *peer).map(|(id, _)| *id).next()
    }
}

#[derive(Clone)]
pub struct Node {
    pub local: PeerId,
    pub dht: StreamProtocol,
    swarm_tx: mpsc::UnboundedSender<SwarmFn>,
    pub net: Arc<Mutex<NetState>>,
    streams: libp2p_stream::Control,
}

pub const PING: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");

impl Node {
    pub fn new(local: PeerId, dht: StreamProtocol, streams: libp2p_stream::Control, kad_server: bool) -> (Node, mpsc::UnboundedReceiver<SwarmFn>) {
        let (swarm_tx, rx) = mpsc::unbounded_channel();
        let net = NetState { kad_server, ..Default::default() };
        (Node { local, dht, swarm_tx, net: Arc::new(Mutex::new(net)), streams }, rx)
    }

    /// Runs `f` on the swarm, in the event loop.
    pub async fn swarm<R: Send + 'static>(&self, f: impl FnOnce(&mut Swarm<Behaviour>) -> R + Send + 'static) -> R {
        let (tx, rx) = oneshot::channel();
        let sent = self.swarm_tx.send(Box::new(move |s| {
            let _ = tx.send(f(s));
        }));
        assert!(sent.is_ok(), "the swarm loop is gone");
        rx.await.expect("the swarm loop is gone")
    }

    pub fn net(&self) -> std::sync::MutexGuard<'_, NetState> {
        self.net.lock().unwrap()
    }

    pub async fn open(&self, peer: PeerId, protocol: StreamProtocol) -> Result<Stream, libp2p_stream::OpenStreamError> {
        self.streams.clone().open_stream(peer, protocol).await
    }

    pub async fn routing_table(&self) -> Vec<PeerId> {
        self.swarm(|s| {
            let mut out = Vec::new();
            for b in s.behaviour_mut().kad.kbuckets() {
                for e in b.iter() {
                    out.push(*e.node.key.preimage());
                }
            }
            out
        })
        .await
    }

    /// Starts a Kademlia query with `start` and feeds its progress to `watch` (in the event loop).
    /// The watcher is registered in the loop, before the query can progress. False: the query did not start.
    pub async fn query(
        &self,
        start: impl FnOnce(&mut kad::Behaviour<kad::store::MemoryStore>) -> Option<kad::QueryId> + Send + 'static,
        watch: QueryWatcher,
    ) -> bool {
        let net = self.net.clone();
        self.swarm(move |s| match start(&mut s.behaviour_mut().kad) {
            Some(id) => {
                net.lock().unwrap().queries.insert(id, watch);
                true
            }
            None => false,
        })
        .await
    }

    /// `peer` asked who we are (and was told) since `since`.
    pub fn asked_since(&self, peer: &PeerId, since: Instant) -> bool {
        self.net().asked.get(peer).map_or(false, |at| *at >= since)
    }

    pub fn is_open(&self, conn: ConnectionId) -> bool {
        self.net().conns.contains_key(&conn)
    }

    /// Some connection to `peer` is open.
    pub fn connected(&self, peer: &PeerId) -> bool {
        self.net().connection_to(peer).is_some()
    }
}

/// Records what a swarm event says, before main logs it.
pub fn observe(net: &Mutex<NetState>, event: &SwarmEvent<crate::BehaviourEvent>) {
    let mut n = net.lock().unwrap();
    match event {
        SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
            n.conns.insert(
                *connection_id,
                ConnInfo { peer: *peer_id, remote: endpoint.get_remote_address().clone(), outbound: endpoint.is_dialer(), opened_at: crate::events::now_ms() },
            );
        }
        SwarmEvent::ConnectionClosed { connection_id, .. } => {
            n.conns.remove(connection_id);
            n.ended.insert(*connection_id);
        }
        SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
            n.dial_errors.insert(*connection_id, error_chain(error));
        }
        SwarmEvent::Behaviour(crate::BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
            n.identified.insert(
                *peer_id,
                Identified {
                    agent: info.agent_version.clone(),
                    protocols: info.protocols.iter().map(|p| p.to_string()).collect(),
                    listen: info.listen_addrs.clone(),
                },
            );
        }
        SwarmEvent::Behaviour(crate::BehaviourEvent::Identify(identify::Event::Sent { peer_id, .. })) => {
            n.asked.insert(*peer_id, Instant::now());
        }
        SwarmEvent::Behaviour(crate::BehaviourEvent::Kad(kad::Event::ModeChanged { new_mode })) => {
            n.kad_server = *new_mode == kad::Mode::Server;
        }
        SwarmEvent::Behaviour(crate::BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, step, .. })) => {
            if let Some(mut w) = n.queries.remove(id) {
                if !w(result, step.last) && !step.last {
                    n.queries.insert(*id, w);
                }
            }
        }
        _ => {}
    }
}

/// An error with its causes, which is where the socket's words (refused, timed out) are.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// Polls `cond` every 10 ms for at most `limit` (the go node's waitUntil).
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
