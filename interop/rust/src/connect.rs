//! Solution #1 for a rust-libp2p peer: connect to each bootstrap in order until one admits this node (failover),
//! one attempt each (rust-libp2p has no notion of a busy bootstrap, so there is no busy retry), with the plan's
//! categories. Also the dial and the raw ping the health check and the reachability check share.

use crate::kadwire::{self, Message, FIND_NODE};
use crate::node::{error_chain, wait_until, PING};
use crate::peer::{categorize, ms, Attempt, Categorized, Peer};
use crate::events::now_ms;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{
    multiaddr::Protocol,
    swarm::{dial_opts::{DialOpts, PeerCondition}, ConnectionId},
    Multiaddr, PeerId,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Reads rust-libp2p's dial error, whose causes carry the socket's words; one that names none is `unknown` with
/// its text.
pub fn categorize_dial(text: &str) -> Categorized {
    let has = |s: &str| text.contains(s);
    if has("Connection refused") {
        categorize("refused", text)
    } else if has("timed out") || has("Timeout") || has("deadline") {
        categorize("timeout", text)
    } else if has("No route to host") || has("Network is unreachable") || has("Host is unreachable") {
        categorize("unreachable", text)
    } else if has("Unexpected peer ID") || has("peer id mismatch") {
        categorize("protocol", text)
    } else {
        categorize("unknown", text)
    }
}

pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) => Some(p),
        _ => None,
    }
}

/// Fresh connections one connect may take when each is closed with no evidence of an admission decision: a
/// bootstrap that refuses our agent closes every one; an idle-closing one only when it wins a race against our DHT
/// stream. As for the js node (nodes/connect.ts) and the go peer, five in a row is a rejection, not bad luck.
const ADMISSION_CONNECTIONS: u32 = 5;

/// How long connect holds its DHT stream open for the walk that follows it.
const WALK_HOLD: Duration = Duration::from_secs(3);

/// Fresh connections a health ping may take when each closes under it.
const PING_CLOSED_TRIES: u32 = 6;

/// A raw stream being opened (node.open in a task of its own).
pub type Opening = tokio::task::JoinHandle<Result<libp2p::Stream, libp2p_stream::OpenStreamError>>;

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Peer {
    /// A connection to `peer` (the open one, or a new one to `addr`, or to the addresses Kademlia knows), within
    /// the deadline. A connection that closed right after it opened is returned too: the caller sees it closed.
    pub async fn dial(&self, peer: PeerId, addr: Option<Multiaddr>, deadline: Instant, budget_ms: u64) -> Result<ConnectionId, Categorized> {
        self.dial_opening(peer, addr, deadline, budget_ms, None).await.map(|(c, _)| c)
    }

    /// `dial`, with a raw stream of `open` requested the moment the dial is issued: libp2p-stream hands the request
    /// to the new connection's handler as it is created, so the stream opens alongside identify. Requested after
    /// the connection is seen (a poll later), it came after identify was done, and a bootstrap that closes idle
    /// connections (idle timeout 0) had closed this one with our stream still opening: an idle close that looked
    /// exactly like an admission refusal.
    pub async fn dial_opening(
        &self,
        peer: PeerId,
        addr: Option<Multiaddr>,
        deadline: Instant,
        budget_ms: u64,
        open: Option<libp2p::StreamProtocol>,
    ) -> Result<(ConnectionId, Option<Opening>), Categorized> {
        let opening = |node: &crate::node::Node| {
            open.clone().map(|p| {
                let node = node.clone();
                tokio::spawn(async move { node.open(peer, p).await })
            })
        };
        if let Some(c) = self.node.net().connection_to(&peer) {
            return Ok((c, opening(&self.node)));
        }
        let opts = match addr {
            Some(a) => DialOpts::peer_id(peer).addresses(vec![a]).condition(PeerCondition::Always).build(),
            // What identify told, and what Kademlia knows (its routing table's addresses).
            None => {
                let known = self.node.net().identified.get(&peer).map(|i| i.listen.clone()).unwrap_or_default();
                DialOpts::peer_id(peer).addresses(known).extend_addresses_through_behaviour().condition(PeerCondition::Always).build()
            }
        };
        let id = opts.connection_id();
        self.node.swarm(move |s| s.dial(opts).map_err(|e| error_chain(&e))).await.map_err(|e| categorize_dial(&e))?;
        let stream = opening(&self.node);
        let fail = |c: Categorized, stream: Option<Opening>| {
            if let Some(s) = stream {
                s.abort();
            }
            Err(c)
        };
        loop {
            {
                let mut n = self.node.net();
                if n.conns.contains_key(&id) || n.ended.contains(&id) {
                    return Ok((id, stream));
                }
                if let Some(e) = n.dial_errors.remove(&id) {
                    drop(n);
                    return fail(categorize_dial(&e), stream);
                }
            }
            if Instant::now() >= deadline {
                return fail(categorize("timeout", format!("no connection within {budget_ms} ms (the dial did not complete)")), stream);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn connect(&self, addrs: &[String], timeout_ms: u64) -> Value {
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut last: Option<Categorized> = None;
        for (i, a) in addrs.iter().enumerate() {
            let started = now_ms();
            let mut held = None;
            let (outcome, cat) = self.connect_once(a, timeout_ms, &mut held).await;
            let ended = now_ms();
            let at = Attempt {
                attempt: i + 1, bootstrap: a.clone(), timeout_ms, started_at: started, ended_at: ended, duration_ms: ended - started, outcome, error: cat.clone(),
            };
            attempts.push(at.clone());
            {
                let mut s = self.state.lock().unwrap();
                s.attempts.push(at);
                if cat.is_some() {
                    s.last_error = cat.clone();
                }
            }
            if outcome == "success" {
                let peer = a.parse::<Multiaddr>().ok().as_ref().and_then(peer_of).expect("checked by the request");
                {
                    let mut s = self.state.lock().unwrap();
                    s.current_bootstrap = Some(a.clone());
                    s.connected_at = ended;
                    s.bootstrap_ids.insert(peer);
                }
                // The walk a deployed node runs from its bootstrap, with connect's DHT stream still open: an
                // idle-closing bootstrap (idle timeout 0) closed the connection the moment that stream ended, and the
                // walk's own stream, on a fresh connection, lost the race to its close about one time in six (seen:
                // a client-mode peer that never learnt of the others). Waited for up to WALK_HOLD.
                let addr: Multiaddr = a.parse().expect("checked by the request");
                self.node.swarm(move |s| s.behaviour_mut().kad.add_address(&peer, addr)).await;
                self.walk(WALK_HOLD).await;
                if let Some(mut s) = held.take() {
                    let _ = s.close().await;
                }
                let size = self.node.swarm(|s| s.behaviour_mut().kad.kbuckets().map(|b| b.num_entries()).sum::<usize>()).await;
                {
                    let mut s = self.state.lock().unwrap();
                    if s.first_walk_at == 0 && size > 0 {
                        s.first_walk_at = ended;
                    }
                }
                if self.args.auto_monitor {
                    crate::health::Monitor::start_on(self, a.clone());
                }
                self.events.emit("connect:done", json!({ "success": true, "bootstrap": a, "attempts": attempts.len() }));
                return json!({ "success": true, "bootstrap": a, "attempts": attempts });
            }
            last = cat;
        }
        let mut done = json!({ "success": false, "attempts": attempts.len() });
        if let Some(l) = &last {
            done["error"] = json!(l);
        }
        self.events.emit("connect:done", done);
        let mut out = json!({ "success": false, "attempts": attempts });
        if let Some(l) = &last {
            out["error"] = json!(l);
        }
        out
    }

    /// Dials, then asks the bootstrap a FIND_NODE on a raw DHT stream opened at once, before identify ends, while
    /// watching whether it keeps the connection once it knows this node (as interop/go's connectOnce). A close once
    /// the bootstrap took our DHT stream is an admission refusal: a bootstrap that only closes idle connections
    /// (idle timeout 0) keeps one that carries a stream. Two such closes, or closes of every one of
    /// ADMISSION_CONNECTIONS fresh connections, are a rejection; a close alone is no evidence (rust-libp2p 0.54 with
    /// idle timeout 0 closes about one connection in six at its very start).
    /// On success `held` is the DHT stream, still open.
    async fn connect_once(&self, addr_text: &str, timeout_ms: u64, held: &mut Option<libp2p::Stream>) -> (&'static str, Option<Categorized>) {
        let fail = |c: Categorized| (c.category, Some(c));
        let addr: Multiaddr = match addr_text.parse() {
            Ok(a) => a,
            Err(e) => return fail(categorize("unknown", format!("{addr_text}: not a multiaddr: {e}"))),
        };
        let Some(peer) = peer_of(&addr) else { return fail(categorize("unknown", format!("{addr_text}: no /p2p/ peer ID"))) };
        let deadline = Instant::now() + ms(timeout_ms);
        let dht = self.node.dht.clone();
        let (mut rejections, mut closes, mut asked_first) = (0, 0, 0);
        let mut last_close = String::new();
        let rejected = |rejections: u32, closes: u32, asked_first: u32, last_close: &str| {
            fail(if rejections >= 2 {
                categorize("rejected", format!("{last_close} (twice, on fresh connections)"))
            } else {
                categorize("rejected", format!(
                    "the bootstrap closed each of {closes} fresh connections before our DHT stream was open ({asked_first} of them after it asked who we are); an idle-closing bootstrap would keep one that carries a stream: agent rejected?"
                ))
            })
        };
        while rejections < 2 && closes < ADMISSION_CONNECTIONS {
            let attempt_start = Instant::now();
            let (conn, opening) = match self.dial_opening(peer, Some(addr.clone()), deadline, timeout_ms, Some(dht.clone())).await {
                Ok((conn, opening)) => (conn, opening.expect("a stream was asked for")),
                // Connections the bootstrap took and closed on us are what it did, even when the deadline then ran
                // out on the next one: a loaded client's retries must not turn "closed the connection" into "not
                // responding".
                Err(_) if closes > 0 && Instant::now() >= deadline => return rejected(rejections, closes, asked_first, &last_close),
                Err(c) => return fail(c),
            };
            let mut negotiated = false;
            let mut unsupported = false;
            let mut err: Option<String> = None;
            let mut closer = 0usize;
            let mut stream = None;
            match tokio::time::timeout(left(deadline), opening).await {
                Err(_) => err = Some(format!("no DHT stream within {timeout_ms} ms")),
                Ok(Err(join)) => err = Some(join.to_string()),
                Ok(Ok(Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(p)))) => {
                    unsupported = true;
                    err = Some(format!("protocols not supported: {p}"));
                }
                Ok(Ok(Err(e))) => err = Some(error_chain(&e)),
                Ok(Ok(Ok(mut s))) => {
                    negotiated = true;
                    let ask = Message::new(FIND_NODE, self.node.local.to_bytes());
                    match tokio::time::timeout(left(deadline), kadwire::exchange(&mut s, &ask)).await {
                        Ok(Ok(answer)) => {
                            closer = answer.closer.iter().filter(|p| p.peer_id() != Some(self.node.local) && p.peer_id() != Some(peer)).count();
                            // Hold the stream until the bootstrap asked who we are, plus a grace: an admission
                            // policy acts then.
                            wait_until(left(deadline).min(Duration::from_secs(2)), || self.node.asked_since(&peer, attempt_start)).await;
                            wait_until(left(deadline).min(Duration::from_millis(500)), || !self.node.connected(&peer)).await;
                        }
                        Ok(Err(e)) => err = Some(e),
                        Err(_) => err = Some(format!("no DHT answer within {timeout_ms} ms")),
                    }
                    stream = Some(s);
                }
            }
            if err.is_some() {
                // A failure on a connection the bootstrap is closing is the close, whatever error it surfaced as.
                wait_until(left(deadline).min(Duration::from_millis(300)), || !self.node.is_open(conn)).await;
            }
            // `closed`: the bootstrap has no connection with us left (an admission refusal closes them all). Ours
            // alone closed while another is open (the health monitor's): a connection an idle timeout ended, tried
            // again.
            let closed = !self.node.connected(&peer);
            let ours_closed = !self.node.is_open(conn);
            let asked = self.node.asked_since(&peer, attempt_start);
            eprintln!("chiral-rust-node: connect try to {peer}: negotiated={negotiated} asked={asked} closed={closed} ours_closed={ours_closed} error={err:?}");
            let admitted = err.is_none() && !closed;
            if let Some(mut s) = stream {
                if admitted {
                    *held = Some(s);
                } else {
                    let _ = s.close().await;
                }
            }
            // The bootstrap's own answer that it has no such protocol, whatever it did with the connection after
            // (an idle-closing one closes it at once, since our stream never opened): not an admission decision.
            if unsupported {
                return fail(categorize("protocol", format!("the bootstrap does not serve {dht}: {}", err.unwrap_or_default())));
            }
            if admitted {
                self.state.lock().unwrap().last_read = now_ms();
                let agent = self.node.net().identified.get(&peer).map(|i| i.agent.clone());
                self.events.emit(
                    "bootstrap:identified",
                    json!({ "bootstrap": addr_text, "agentVersion": agent, "speaksDht": true, "otherPeers": null, "closerPeers": closer }),
                );
                return ("success", None);
            }
            if closed {
                closes += 1;
                if asked {
                    asked_first += 1;
                }
                if negotiated {
                    rejections += 1;
                    last_close = "the bootstrap closed the connection after identify while our DHT stream was open: agent rejected?".into();
                    if let Some(e) = &err {
                        last_close += &format!(" ({e})");
                    }
                }
                if Instant::now() >= deadline {
                    return rejected(rejections, closes, asked_first, &last_close);
                }
                continue;
            }
            if Instant::now() >= deadline {
                return fail(categorize("timeout", format!("no DHT answer from the bootstrap within {timeout_ms} ms")));
            }
            if ours_closed && err.is_some() {
                continue;
            }
            // Still connected: the bootstrap is there and does not answer our DHT protocol.
            let err = err.unwrap_or_default();
            let lists_dht = self.node.net().identified.get(&peer).map(|i| i.protocols.iter().any(|p| p.as_str() == dht.as_ref()));
            if lists_dht == Some(false) {
                return fail(categorize("protocol", format!("the bootstrap's identify lists no {dht} ({err})")));
            }
            let c = categorize_dial(&err);
            if c.category == "unknown" && negotiated {
                return fail(categorize("protocol", format!("the bootstrap answered our DHT request with something that is not a DHT answer: {err}")));
            }
            return fail(c);
        }
        rejected(rejections, closes, asked_first, &last_close)
    }

    /// One libp2p ping (/ipfs/ping/1.0.0) on a raw stream, with a DHT stream held open meanwhile: rust-libp2p does
    /// not count a ping stream as keeping a connection alive, so an idle-closing node (idle timeout 0) would cut a
    /// lone ping off. A connection closed under the ping is tried again on a fresh one. Returns the round trip and
    /// the DHT stream held, for a question after.
    pub async fn ping_now(&self, peer: PeerId, addr: Option<Multiaddr>, deadline: Instant, budget_ms: u64) -> Result<(Duration, Option<libp2p::Stream>), String> {
        let mut last = String::from("no attempt");
        // Connections closed under the ping have a budget of their own (as the js node's health ping): an
        // idle-closing node can close several fresh ones in a row on a loaded machine; any other failure twice is
        // the answer.
        let (mut closed_tries, mut other_tries) = (0, 0);
        // When the node asked who we are on a connection it then closed under the ping: its libp2p stack answered
        // (handshake, identify), which is the liveness a ping shows. An idle-0 rust-libp2p node closes a fresh
        // connection as soon as identify is done and only a negotiating stream keeps it, so on a quiet machine it
        // can win that race against our ping on every connection of a check: without this a healthy bootstrap was
        // red. The round trip is then the time to its identify request. A frozen node asks nothing and stays red.
        let mut answered: Option<Duration> = None;
        let alive = |answered: Option<Duration>, err: String| match answered {
            Some(rtt) => Ok((rtt, None)),
            None => Err(err),
        };
        while closed_tries < PING_CLOSED_TRIES && other_tries < 2 {
            if Instant::now() >= deadline {
                break;
            }
            let attempt_started = Instant::now();
            let (conn, opening) = match self.dial_opening(peer, addr.clone(), deadline, budget_ms, Some(self.node.dht.clone())).await {
                Ok((conn, opening)) => (conn, opening.expect("a stream was asked for")),
                Err(c) => return Err(format!("{}: {}", c.category, c.detail)),
            };
            // The ping goes out at once, beside the hold stream's negotiation, not after it: an idle-0 rust-libp2p node
            // counts a stream as keeping the connection only while it is negotiating (a negotiated DHT stream left idle
            // does not), and closes the connection once identify is done; a ping sent after the hold stream's round
            // trip lost that race on every fresh connection of a quiet machine ("no ping answer within 5000 ms").
            let pinged = tokio::time::timeout(left(deadline), self.ping_once(peer)).await;
            let hold = if matches!(pinged, Ok(Ok(_))) {
                match tokio::time::timeout(left(deadline).min(Duration::from_millis(500)), opening).await {
                    Ok(Ok(Ok(s))) => Some(s),
                    _ => None,
                }
            } else {
                opening.abort();
                None
            };
            match pinged {
                Ok(Ok(rtt)) => return Ok((rtt, hold)),
                // The connection carrying the ping went away: an idle close, tried again on a fresh connection.
                Ok(Err((true, e))) => {
                    closed_tries += 1;
                    last = e;
                    if let Some(at) = self.node.net().asked.get(&peer).copied().filter(|at| *at >= attempt_started) {
                        answered = Some(at - attempt_started);
                    }
                    // Once more on a fresh connection, and the only one: libp2p-stream opens a stream on any connection
                    // to the peer, and one the node is closing (or one asked for before the loop saw it close) would
                    // take the next ping down with it.
                    let _ = conn;
                    self.node.swarm(move |s| { let _ = s.disconnect_peer_id(peer); }).await;
                    wait_until(left(deadline).min(Duration::from_millis(300)), || !self.node.connected(&peer)).await;
                    continue;
                }
                Ok(Err((false, e))) => {
                    other_tries += 1;
                    last = e
                }
                Err(_) => return alive(answered, format!("no ping answer within {budget_ms} ms")),
            }
            // The connection closed under the ping (an idle-closing node): once more on a fresh one. (Another one to
            // the same peer, e.g. the monitor's, may have carried the streams: the check is on any of them closing.)
            if !wait_until(left(deadline).min(Duration::from_millis(300)), || !self.node.is_open(conn) || !self.node.connected(&peer)).await {
                break;
            }
        }
        if Instant::now() >= deadline {
            return alive(answered, format!("no ping answer within {budget_ms} ms"));
        }
        alive(answered, last)
    }

    /// One ping; an error says whether the connection went away under it (true) or the ping itself failed.
    async fn ping_once(&self, peer: PeerId) -> Result<Duration, (bool, String)> {
        // yamux reports a stream of a closed connection as an Other error saying so ("<id>: connection is closed").
        let closed = |e: &std::io::Error| {
            use std::io::ErrorKind::*;
            let text = e.to_string();
            matches!(e.kind(), UnexpectedEof | ConnectionReset | BrokenPipe | ConnectionAborted | NotConnected)
                || text.contains("connection is closed")
                || text.contains("closed by remote")
        };
        let mut s = match self.node.open(peer, PING).await {
            Ok(s) => s,
            Err(libp2p_stream::OpenStreamError::Io(e)) => return Err((true, format!("failed to open stream: {}", error_chain(&e)))),
            Err(e) => return Err((false, error_chain(&e))),
        };
        let payload: [u8; 32] = Sha256::digest(format!("{:?}{}", Instant::now(), now_ms()).as_bytes()).into();
        let started = Instant::now();
        s.write_all(&payload).await.map_err(|e| (closed(&e), e.to_string()))?;
        s.flush().await.map_err(|e| (closed(&e), e.to_string()))?;
        let mut echo = [0u8; 32];
        s.read_exact(&mut echo).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof { (true, "the connection closed before the ping was answered".to_string()) } else { (closed(&e), e.to_string()) }
        })?;
        let rtt = started.elapsed();
        let _ = s.close().await;
        if echo != payload {
            return Err((false, "the ping answer is not the payload sent".into()));
        }
        Ok(rtt)
    }
}
