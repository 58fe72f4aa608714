//! The node's events (the contract's event schema: seq, time, node, type, …) in a bounded ring, read by the
//! control channel's `/events` stream from any sequence number; a reader that fell behind the ring is told the gap.

use serde_json::{json, Map, Value};
use std::sync::Mutex;
use tokio::sync::watch;

pub struct EventLog {
    node: String,
    retention: usize,
    inner: Mutex<Ring>,
    next: watch::Sender<usize>,
}

struct Ring {
    events: Vec<Value>,
    next: usize,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl EventLog {
    pub fn new(node: &str, retention: usize) -> EventLog {
        EventLog { node: node.into(), retention, inner: Mutex::new(Ring { events: Vec::new(), next: 0 }), next: watch::channel(0).0 }
    }

    pub fn retention(&self) -> usize {
        self.retention
    }

    /// `fields` is a JSON object: the event's own fields.
    pub fn emit(&self, kind: &str, fields: Value) {
        let mut ring = self.inner.lock().unwrap();
        let mut ev = Map::new();
        ev.insert("seq".into(), json!(ring.next));
        ev.insert("time".into(), json!(now_ms()));
        ev.insert("node".into(), json!(self.node));
        ev.insert("type".into(), json!(kind));
        if let Value::Object(f) = fields {
            ev.extend(f);
        }
        let slot = ring.next % self.retention;
        if ring.events.len() < self.retention {
            ring.events.push(Value::Object(ev));
        } else {
            ring.events[slot] = Value::Object(ev);
        }
        ring.next += 1;
        let next = ring.next;
        drop(ring);
        self.next.send_replace(next);
    }

    pub fn first(&self) -> usize {
        self.inner.lock().unwrap().next.saturating_sub(self.retention)
    }

    /// The lines from `from` on (a gap line first when some were dropped) and the sequence number to read next.
    pub fn from(&self, from: usize) -> (Vec<Value>, usize) {
        let ring = self.inner.lock().unwrap();
        let first = ring.next.saturating_sub(self.retention);
        let mut lines = Vec::new();
        let mut at = from;
        if at < first {
            lines.push(json!({ "gap": { "from": at, "to": first, "retention": self.retention } }));
            at = first;
        }
        while at < ring.next {
            lines.push(ring.events[at % self.retention].clone());
            at += 1;
        }
        (lines, at)
    }

    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.next.subscribe()
    }
}
