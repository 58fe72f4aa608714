//! Solution #3 for a rust-libp2p peer: the DHT read/write test, the reachability check, lookups, provider records,
//! the six-step verification and the bidirectional wait. A peer that finds nobody is `unknown`, not "you might be
//! first": no external bootstrap says who else is online, and this node does not pretend to know.

use crate::events::now_ms;
use crate::kadwire::{self, Message, ADD_PROVIDER, FIND_NODE, GET_PROVIDERS, GET_VALUE, PUT_VALUE};
use crate::node::{error_chain, wait_until};
use crate::peer::{ids, ms, DialFailure, Peer};
use futures::AsyncWriteExt;
use libp2p::{kad, PeerId};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The error says the connection went away (yamux, the stream's end, libp2p-stream's dropped handler).
fn closed_under(e: &str) -> bool {
    ["connection is closed", "oneshot canceled", "receiver is gone", "ended without an answer", "ended in the middle", "Connection reset", "Broken pipe", "closed by remote"]
        .iter()
        .any(|w| e.contains(w))
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Peer {
    /// One question to one peer on a fresh raw DHT stream (dialling it if needed), within the deadline.
    async fn ask(&self, to: PeerId, m: &Message, deadline: Instant) -> Result<Message, String> {
        self.again_if_closed(to, deadline, || self.ask_once(to, m, deadline)).await
    }

    /// A message that has no answer (ADD_PROVIDER).
    async fn tell(&self, to: PeerId, m: &Message, deadline: Instant) -> Result<(), String> {
        self.again_if_closed(to, deadline, || self.tell_once(to, m, deadline)).await
    }

    /// `once`, again (up to three times in all) while the connection closes under it, as an idle-closing node's do.
    async fn again_if_closed<T, F: std::future::Future<Output = Result<T, String>>>(&self, to: PeerId, deadline: Instant, once: impl Fn() -> F) -> Result<T, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match once().await {
                Err(e) if closed_under(&e) && Instant::now() < deadline => {
                    last = e;
                    wait_until(left(deadline).min(Duration::from_millis(300)), || !self.node.connected(&to)).await;
                }
                r => return r,
            }
        }
        Err(last)
    }

    async fn ask_once(&self, to: PeerId, m: &Message, deadline: Instant) -> Result<Message, String> {
        let mut s = match tokio::time::timeout(left(deadline), self.node.open(to, self.node.dht.clone())).await {
            Err(_) => return Err("no DHT stream before the deadline".into()),
            Ok(r) => r.map_err(|e| error_chain(&e))?,
        };
        let r = match tokio::time::timeout(left(deadline), kadwire::exchange(&mut s, m)).await {
            Err(_) => Err("no DHT answer before the deadline".into()),
            Ok(r) => r,
        };
        let _ = s.close().await;
        r
    }

    async fn tell_once(&self, to: PeerId, m: &Message, deadline: Instant) -> Result<(), String> {
        let mut s = match tokio::time::timeout(left(deadline), self.node.open(to, self.node.dht.clone())).await {
            Err(_) => return Err("no DHT stream before the deadline".into()),
            Ok(r) => r.map_err(|e| error_chain(&e))?,
        };
        kadwire::send(&mut s, m).await.map_err(|e| e.to_string())?;
        let _ = s.close().await;
        Ok(())
    }

    pub async fn test_discovery(&self, content: &str) -> Value {
        let r = self.test_discovery_once(content).await;
        self.events.emit("dht:test", r.clone());
        r
    }

    /// The plan's DHT read/write test, read back from other peers' answers (the node's own store does not count).
    /// Two records, since no one kind is read back everywhere: a provider record (rust-libp2p never returns a
    /// provider record to the provider itself) and a value record written with PUT_VALUE (go-libp2p-kad-dht
    /// refuses values outside its validators' namespaces). Either one read back from another peer is a working
    /// read and write.
    async fn test_discovery_once(&self, content: &str) -> Value {
        let started = Instant::now();
        let deadline = started + ms(self.t.dht_query_timeout_ms);
        let lat = || started.elapsed().as_millis() as u64;
        let (all, _) = self.routing_peers().await;
        if all.is_empty() {
            self.query_done(false);
            return json!({ "success": false, "latencyMs": 0, "error": "the DHT routing table is empty: no peer to store the test record on" });
        }
        let local = self.node.local;
        let key = kadwire::sha256_cid_multihash(&Sha256::digest(format!("{content}/{local}").as_bytes()));
        let listen: Vec<Vec<u8>> = self.node.swarm(|s| s.listeners().map(|a| a.to_vec()).collect()).await;
        let mut add = Message::new(ADD_PROVIDER, key.clone());
        add.providers.push(kadwire::Peer { id: local.to_bytes(), addrs: listen });
        let record_key = format!("/chiral-test/{content}-{local}").into_bytes();
        let value = now_ms().to_string().into_bytes();
        let mut put = Message::new(PUT_VALUE, record_key.clone());
        put.record = Some((record_key.clone(), value.clone()));
        let (mut provided, mut stored) = (0, 0);
        let mut last_err = String::new();
        for id in &all {
            match self.tell(*id, &add, deadline).await {
                Ok(()) => provided += 1,
                Err(e) => last_err = e,
            }
            match self.ask(*id, &put, deadline).await {
                Ok(_) => stored += 1,
                Err(e) => last_err = e,
            }
        }
        if provided == 0 && stored == 0 {
            self.query_done(false);
            return json!({ "success": false, "latencyMs": lat(), "error": format!("DHT write failed: no routing-table peer took our records ({last_err})") });
        }
        self.state.lock().unwrap().last_write = now_ms();
        // ADD_PROVIDER has no answer: a peer may still be storing the record when it is asked, so ask again until
        // the query deadline.
        while Instant::now() < deadline {
            for id in &all {
                match self.ask(*id, &Message::new(GET_PROVIDERS, key.clone()), deadline).await {
                    Ok(a) if a.providers.iter().any(|p| p.peer_id() == Some(local)) => return self.read_ok(lat()),
                    Ok(_) => {}
                    Err(e) => last_err = e,
                }
                match self.ask(*id, &Message::new(GET_VALUE, record_key.clone()), deadline).await {
                    Ok(a) if a.record.as_ref().map(|(_, v)| v == &value).unwrap_or(false) => return self.read_ok(lat()),
                    Ok(_) => {}
                    Err(e) => last_err = e,
                }
            }
            tokio::time::sleep(left(deadline).min(Duration::from_millis(200))).await;
        }
        self.query_done(false);
        let mut why = format!(
            "DHT read failed: none of the {} routing-table peers returned our provider record or our value record (stored on {stored})",
            all.len()
        );
        if !last_err.is_empty() {
            why += &format!(" (last error: {last_err})");
        }
        json!({ "success": false, "latencyMs": lat(), "error": why })
    }

    fn read_ok(&self, latency: u64) -> Value {
        self.query_done(true);
        self.state.lock().unwrap().last_read = now_ms();
        json!({ "success": true, "latencyMs": latency })
    }

    pub async fn verify_reachable(&self, id: PeerId, fresh: bool) -> Value {
        let budget = self.t.peer_dial_timeout_ms;
        let deadline = Instant::now() + ms(budget);
        if fresh && self.node.connected(&id) {
            // A fresh probe tests the path as it is now, not a connection that was made before.
            self.node.swarm(move |s| { let _ = s.disconnect_peer_id(id); }).await;
            wait_until(Duration::from_secs(1), || !self.node.connected(&id)).await;
        }
        let failed = |category: &'static str, detail: String| {
            self.state.lock().unwrap().dial_failures.push(DialFailure { peer_id: id.to_string(), category, detail: detail.clone(), at: now_ms() });
            self.events.emit("dial:failed", json!({ "peerId": id.to_string(), "category": category, "detail": detail }));
            let error = format!("{category}: {detail}");
            self.events.emit("peer:verified", json!({ "peerId": id.to_string(), "reachable": false, "error": error }));
            json!({ "reachable": false, "error": error })
        };
        let conn = match self.dial(id, None, deadline, budget).await {
            Ok(c) => c,
            Err(c) => return failed(c.category, c.detail),
        };
        let address = self.node.net().conns.get(&conn).map(|c| c.remote.to_string());
        let mut out = json!({ "reachable": true });
        if let Some(a) = address {
            out["address"] = json!(a);
        }
        match self.ping_now(id, None, deadline, budget).await {
            Ok((rtt, hold)) => {
                out["latencyMs"] = json!(rtt.as_millis() as u64);
                if let Some(mut s) = hold {
                    let _ = s.close().await;
                }
            }
            // Connected but silent to a ping: connected is what reachable means here; the latency stays unknown.
            Err(_) if self.node.connected(&id) => {}
            Err(e) => return failed(crate::connect::categorize_dial(&e).category, e),
        }
        let mut ev = out.clone();
        ev["peerId"] = json!(id.to_string());
        self.events.emit("peer:verified", ev);
        out
    }

    pub async fn find_peer(&self, id: PeerId, via: Option<PeerId>) -> Value {
        let started = Instant::now();
        let deadline = started + ms(self.t.dht_query_timeout_ms);
        if let Some(via) = via {
            let mut out = json!({ "found": false, "addresses": [] });
            match self.ask(via, &Message::new(FIND_NODE, id.to_bytes()), deadline).await {
                Err(e) => out["error"] = json!(e),
                Ok(a) => {
                    let names: Vec<String> = a.closer.iter().filter_map(|p| p.peer_id()).map(|p| p.to_string()).collect();
                    out["found"] = json!(a.closer.iter().any(|p| p.peer_id() == Some(id)));
                    out["closerPeers"] = json!(names);
                }
            }
            out["latencyMs"] = json!(started.elapsed().as_millis() as u64);
            return out;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let mut found: Option<Vec<String>> = None;
        let watch = Box::new(move |r: &kad::QueryResult, last: bool| {
            if let kad::QueryResult::GetClosestPeers(Ok(ok)) = r {
                if let Some(p) = ok.peers.iter().find(|p| p.peer_id == id) {
                    found = Some(p.addrs.iter().map(|a| a.to_string()).collect());
                }
            }
            if last {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(found.take());
                }
            }
            last
        });
        self.node.query(move |k| Some(k.get_closest_peers(id)), watch).await;
        let result = tokio::time::timeout(left(deadline), rx).await;
        let timed_out = result.is_err();
        let found = match result {
            Ok(Ok(Some(addrs))) => Some(addrs),
            // Not among the closest peers a walk returned: known to the routing table is found (as go-libp2p's
            // FindPeer, which answers from it first).
            _ => self.node.swarm(move |s| {
                s.behaviour_mut().kad.kbucket(id).and_then(|b| {
                    b.iter().find(|e| *e.node.key.preimage() == id).map(|e| e.node.value.iter().map(|a| a.to_string()).collect::<Vec<_>>())
                })
            }).await,
        };
        self.query_done(found.is_some());
        let mut out = json!({ "found": found.is_some(), "addresses": found.clone().unwrap_or_default(), "latencyMs": started.elapsed().as_millis() as u64 });
        if found.is_none() {
            out["error"] = json!(if timed_out { "the lookup did not finish within the DHT query timeout" } else { "not found by a DHT lookup" });
        }
        out
    }

    pub async fn provider_records(&self, key: Vec<u8>) -> Value {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let mut providers: BTreeSet<PeerId> = BTreeSet::new();
        let watch = Box::new(move |r: &kad::QueryResult, last: bool| {
            if let kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders { providers: p, .. })) = r {
                providers.extend(p.iter().copied());
            }
            if last {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(std::mem::take(&mut providers));
                }
            }
            last
        });
        self.node.query(move |k| Some(k.get_providers(kad::RecordKey::new(&key))), watch).await;
        let found = tokio::time::timeout(ms(self.t.dht_query_timeout_ms), rx).await.ok().and_then(|r| r.ok());
        self.query_done(found.is_some());
        if found.is_some() {
            self.state.lock().unwrap().last_read = now_ms();
        }
        json!({ "providers": ids(&found.unwrap_or_default().into_iter().collect::<Vec<_>>()) })
    }

    pub async fn provide(&self, key: Vec<u8>) -> Value {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let watch = Box::new(move |r: &kad::QueryResult, last: bool| {
            if let kad::QueryResult::StartProviding(res) = r {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(res.as_ref().map(|_| ()).map_err(|e| e.to_string()));
                }
            }
            last
        });
        let (err_tx, err_rx) = std::sync::mpsc::channel();
        let started = self
            .node
            .query(
                move |k| match k.start_providing(kad::RecordKey::new(&key)) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        let _ = err_tx.send(e.to_string());
                        None
                    }
                },
                watch,
            )
            .await;
        let result = if !started {
            Err(err_rx.try_recv().unwrap_or_else(|_| "the provider record could not be stored".into()))
        } else {
            match tokio::time::timeout(ms(self.t.dht_query_timeout_ms), rx).await {
                Ok(Ok(r)) => r,
                _ => Err(format!("the provider announcement did not finish within {} ms", self.t.dht_query_timeout_ms)),
            }
        };
        match result {
            Ok(()) => {
                self.state.lock().unwrap().last_write = now_ms();
                json!({ "ok": true })
            }
            Err(e) => json!({ "ok": false, "error": e }),
        }
    }

    /// The plan's six steps. fileDiscovery is skipped (this node shares no files: chiral's file transfer is not
    /// implemented here). A peer that finds nobody is `unknown` (see the module's comment).
    pub async fn verify_discovery(&self) -> Value {
        let connected_at = self.state.lock().unwrap().connected_at;
        if connected_at != 0 {
            let until = Instant::now() + ms(self.t.discovery_verification_delay_ms);
            while Instant::now() < until && self.routing_peers().await.1.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let mut skipped: Vec<&str> = Vec::new();
        let mut bootstrap_connected = false;
        if let (true, Some(addr)) = (connected_at != 0, self.bootstrap_address()) {
            if let Some((a, p)) = addr.parse::<libp2p::Multiaddr>().ok().and_then(|a| crate::connect::peer_of(&a).map(|p| (a, p))) {
                let budget = self.t.peer_dial_timeout_ms;
                bootstrap_connected = self.dial(p, Some(a), Instant::now() + ms(budget), budget).await.is_ok();
            }
        }
        let (all, others) = self.routing_peers().await;
        let routing_table_populated = !all.is_empty();
        let announced = self.state.lock().unwrap().routing_adds;
        let events_working = routing_table_populated && announced > 0;
        let test = self.test_discovery("discovery-test").await;
        let dht_read_write = test["success"] == json!(true);
        let peer_dialing = if others.is_empty() {
            skipped.push("peerDialing");
            true
        } else {
            let mut reachable = 0;
            for id in &others {
                if self.verify_reachable(*id, false).await["reachable"] == json!(true) {
                    reachable += 1;
                }
            }
            reachable == others.len()
        };
        skipped.push("fileDiscovery");
        let checks = [
            ("bootstrapConnected", bootstrap_connected),
            ("routingTablePopulated", routing_table_populated),
            ("eventsWorking", events_working),
            ("dhtReadWrite", dht_read_write),
            ("peerDialing", peer_dialing),
            ("fileDiscovery", true),
        ];
        let applicable: Vec<_> = checks.iter().filter(|(n, _)| !skipped.contains(n)).collect();
        let failed: Vec<&str> = applicable.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
        let passed = applicable.len() - failed.len();
        let mut overall = if failed.is_empty() { "verified" } else if passed == 0 || !bootstrap_connected { "failed" } else { "partial" };
        let n = others.len();
        let message = match overall {
            "verified" if n == 0 => {
                overall = "unknown";
                "⚠️ No peers found, and the bootstrap does not say whether anyone else is online - cannot tell \"you might be first\" from discovery failing".to_string()
            }
            "verified" => format!("✅ Discovered {n} peer{} - discovery verified", if n == 1 { "" } else { "s" }),
            "partial" => format!("⚠️ Partial discovery - some features may not work ({} failed)", failed.join(", ")),
            _ => "❌ Discovery broken - cannot find peers".to_string(),
        };
        let status = json!({
            "bootstrapConnected": bootstrap_connected, "routingTablePopulated": routing_table_populated, "eventsWorking": events_working,
            "dhtReadWrite": dht_read_write, "peerDialing": peer_dialing, "fileDiscovery": false, "overall": overall, "firstPeer": false,
            "routingTableSize": n, "discoveredPeers": ids(&others), "skipped": skipped, "message": message,
        });
        self.events.emit("discovery:status", json!({ "status": status }));
        status
    }

    /// Polls until each expected peer (or, with none named, any peer) is in the routing table and answers a dial.
    pub async fn wait_bidirectional(&self, want: Vec<PeerId>, any_peer: bool, timeout_ms: u64) -> Value {
        let started = Instant::now();
        let deadline = started + ms(timeout_ms);
        let mut verified: Vec<Value> = Vec::new();
        let mut done: BTreeSet<PeerId> = BTreeSet::new();
        loop {
            let (_, others) = self.routing_peers().await;
            for id in others {
                if done.contains(&id) || (!any_peer && !want.contains(&id)) || Instant::now() >= deadline {
                    continue;
                }
                let r = match tokio::time::timeout(left(deadline), self.verify_reachable(id, false)).await {
                    Ok(r) => r,
                    Err(_) => break,
                };
                if r["reachable"] == json!(true) {
                    done.insert(id);
                    let mut v = json!({ "peerId": id.to_string(), "afterMs": started.elapsed().as_millis() as u64 });
                    if let Some(l) = r.get("latencyMs") {
                        v["latencyMs"] = l.clone();
                    }
                    verified.push(v);
                }
            }
            let complete = if any_peer { !done.is_empty() } else { want.iter().all(|w| done.contains(w)) };
            if complete || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(left(deadline).min(ms(self.t.discovery_poll_interval_ms))).await;
        }
        let missing: Vec<String> = want.iter().filter(|w| !done.contains(w)).map(|w| w.to_string()).collect();
        let success = missing.is_empty() && (!any_peer || !done.is_empty());
        json!({ "success": success, "durationMs": started.elapsed().as_millis() as u64, "verified": verified, "missing": missing })
    }
}
