//! The plan's bootstrap health check (Solution #2.2) and monitor (Solution #2): a check every
//! healthCheckIntervalMs, the last healthHistorySize results, green < healthyLatencyMs ≤ yellow ≤ degradedLatencyMs,
//! red when unreachable; a warning after highLatencyConsecutiveChecks slow checks in a row, an alert after
//! unreachableAlertMs unreachable (nodes/health/monitor.ts's transitions and events, as interop/go's health.go).

use crate::connect::peer_of;
use crate::events::{now_ms, EventLog};
use crate::kadwire::{self, Message, FIND_NODE};
use crate::peer::{ms, Peer, Timing};
use libp2p::Multiaddr;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResult {
    pub address: String,
    pub is_reachable: bool,
    pub latency_ms: Option<u64>,
    pub last_check_timestamp: i64,
    pub error_message: Option<String>,
    pub peer_count_via_bootstrap: usize,
}

impl Peer {
    /// Pings the bootstrap within the ping deadline, on a fresh connection when it closed ours (an idle timeout is
    /// how such a bootstrap runs, not an outage). peerCountViaBootstrap: the other peers its FIND_NODE answer for our
    /// own ID names (the only count a non-chiral bootstrap gives; it is not who is online).
    pub async fn check_health(&self, address: &str) -> HealthResult {
        let mut res = HealthResult {
            address: address.into(), is_reachable: false, latency_ms: None, last_check_timestamp: now_ms(), error_message: None, peer_count_via_bootstrap: 0,
        };
        let Some((addr, peer)) = address.parse::<Multiaddr>().ok().and_then(|a| peer_of(&a).map(|p| (a, p))) else {
            res.error_message = Some("not a multiaddr with /p2p/".into());
            return res;
        };
        let budget = self.t.health_ping_timeout_ms;
        let deadline = Instant::now() + ms(budget);
        match self.ping_now(peer, Some(addr), deadline, budget).await {
            Err(e) => {
                res.error_message = Some(if e.starts_with("no ping answer") { e } else { format!("ping failed: {e}") });
                res.last_check_timestamp = now_ms();
            }
            Ok((rtt, hold)) => {
                res.is_reachable = true;
                res.latency_ms = Some(rtt.as_millis() as u64);
                res.last_check_timestamp = now_ms();
                if let Some(mut s) = hold {
                    let ask = Message::new(FIND_NODE, self.node.local.to_bytes());
                    if let Ok(Ok(answer)) = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), kadwire::exchange(&mut s, &ask)).await {
                        res.peer_count_via_bootstrap = answer.closer.iter().filter(|p| p.peer_id() != Some(self.node.local) && p.peer_id() != Some(peer)).count();
                    }
                    let _ = futures::AsyncWriteExt::close(&mut s).await;
                }
            }
        }
        res
    }
}

#[derive(Default)]
struct MonitorState {
    running: bool,
    address: Option<String>,
    history: Vec<HealthResult>,
    generation: u64,
    slow_run: u32,
    down_at: i64,
    status: &'static str,
    alert: bool,
    warning: bool,
}

#[derive(Default)]
pub struct Monitor {
    inner: Mutex<MonitorState>,
}

impl Monitor {
    /// Starts (or restarts, on another address) the checks, the first one now.
    pub fn start_on(peer: &Peer, address: String) {
        let generation = {
            let mut m = peer.monitor.inner.lock().unwrap();
            m.generation += 1;
            m.running = true;
            m.address = Some(address.clone());
            if m.status.is_empty() {
                m.status = "unknown";
            }
            m.generation
        };
        peer.events.emit("monitor:started", json!({ "address": address, "intervalMs": peer.t.health_check_interval_ms }));
        let me = peer.me();
        tokio::spawn(async move {
            loop {
                let r = me.check_health(&address).await;
                if me.monitor.inner.lock().unwrap().generation != generation {
                    return;
                }
                me.monitor.record(&me.t, &me.events, r);
                tokio::time::sleep(ms(me.t.health_check_interval_ms)).await;
                if me.monitor.inner.lock().unwrap().generation != generation {
                    return;
                }
            }
        });
    }

    pub fn halt(&self, events: &EventLog) {
        let mut m = self.inner.lock().unwrap();
        if m.running {
            events.emit("monitor:stopped", json!({}));
        }
        m.generation += 1;
        m.running = false;
    }

    fn record(&self, t: &Timing, events: &EventLog, r: HealthResult) {
        let mut m = self.inner.lock().unwrap();
        let at = now_ms();
        m.history.push(r.clone());
        let n = t.health_history_size.max(1);
        if m.history.len() > n {
            let cut = m.history.len() - n;
            m.history.drain(..cut);
        }
        let from = if m.status.is_empty() { "unknown" } else { m.status };
        m.status = status_of(&m.history, t);
        let address = m.address.clone().unwrap_or_default();
        events.emit("health:check", json!({ "health": r, "status": m.status }));
        if from != m.status {
            events.emit("health:status", json!({ "from": from, "to": m.status, "address": address }));
        }
        if !r.is_reachable {
            m.slow_run = 0;
            if m.down_at == 0 {
                m.down_at = at;
            }
            let down = at - m.down_at;
            if !m.alert && down >= t.unreachable_alert_ms as i64 {
                m.alert = true;
                events.emit("health:alert", json!({ "address": address, "unreachableForMs": down,
                    "message": "Bootstrap unreachable - limited connectivity. Try refreshing the connection or wait for recovery" }));
            }
            return;
        }
        if from == "red" && m.down_at != 0 {
            events.emit("health:recovered", json!({ "address": address, "downtimeMs": at - m.down_at }));
        }
        m.down_at = 0;
        m.alert = false;
        match r.latency_ms {
            Some(l) if l > t.degraded_latency_ms => {
                m.slow_run += 1;
                if !m.warning && m.slow_run >= t.high_latency_consecutive_checks {
                    m.warning = true;
                    events.emit("health:warning", json!({ "address": address, "consecutive": m.slow_run, "latencyMs": l,
                        "message": format!("Bootstrap latency above {} ms on {} consecutive checks - network may be slow", t.degraded_latency_ms, m.slow_run) }));
                }
            }
            _ => {
                m.slow_run = 0;
                m.warning = false;
            }
        }
    }

    pub fn state(&self, t: &Timing) -> Value {
        let m = self.inner.lock().unwrap();
        let window = now_ms() - t.uptime_window_ms as i64;
        let recent: Vec<&HealthResult> = m.history.iter().filter(|h| h.last_check_timestamp >= window).collect();
        let uptime = if recent.is_empty() { Value::Null } else { json!(recent.iter().filter(|h| h.is_reachable).count() as f64 * 100.0 / recent.len() as f64) };
        json!({
            "running": m.running, "status": status_of(&m.history, t), "address": m.address, "history": m.history, "uptimePercent": uptime,
            "consecutiveHighLatency": m.slow_run, "unreachableSince": if m.down_at != 0 { json!(m.down_at) } else { Value::Null },
            "warningActive": m.warning, "alertActive": m.alert,
        })
    }
}

fn status_of(history: &[HealthResult], t: &Timing) -> &'static str {
    match history.last() {
        None => "unknown",
        Some(h) if !h.is_reachable => "red",
        Some(h) if h.latency_ms.unwrap_or(0) < t.healthy_latency_ms => "green",
        Some(_) => "yellow",
    }
}
