//! Command-line flags: the knobs real rust-libp2p deployments turn, each one explicit so a scenario states what
//! the bootstrap under test does. No clap: the flag set is small and a dependency more is minutes more cold build.

use std::time::Duration;

pub const USAGE: &str = "usage: chiral-rust-node [--host 127.0.0.1] [--port 0] [--seed TEXT]
  [--dht-protocol /ipfs/kad/1.0.0] [--kad-mode server|client|auto]
  [--idle-timeout SECONDS]            (absent: the library default, 0 s in libp2p-swarm 0.45)
  [--identify-protocol-version TEXT] [--agent-version TEXT]
  [--admit-agent-prefix TEXT]...      (disconnect a peer after identify unless its agent starts with one of them)
  [--routable-only]                   (add only non-private, non-loopback addresses to Kademlia)
  [--max-connections N] [--max-connections-per-peer N] [--max-pending-incoming N]
  [--bootstrap MULTIADDR]...          (dial these and run a Kademlia bootstrap: the node acts as a peer)
  [--exit-on-stdin-close]
  As a chiral-sim peer, serving the control channel (nodes/contract.schema.json) instead of dialling at start:
  --control-token-file PATH (or env CHIRAL_CONTROL_TOKEN_FILE) [--control-host 127.0.0.1] [--control-port 0]
  [--name NAME] [--timing JSON] (the plan's timing, real ms) [--no-auto-monitor]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KadMode {
    Server,
    Client,
    /// rust-libp2p decides: server once it has a confirmed external address, which a loopback node never has.
    Auto,
}

#[derive(Debug, Clone)]
pub struct Args {
    pub host: String,
    pub port: u16,
    pub seed: Option<String>,
    pub dht_protocol: String,
    pub kad_mode: KadMode,
    pub idle_timeout: Option<Duration>,
    pub identify_protocol_version: String,
    pub agent_version: String,
    pub admit_agent_prefixes: Vec<String>,
    pub routable_only: bool,
    pub max_connections: Option<u32>,
    pub max_connections_per_peer: Option<u32>,
    pub max_pending_incoming: Option<u32>,
    pub bootstrap: Vec<String>,
    pub exit_on_stdin_close: bool,
    pub control_token_file: Option<String>,
    pub control_host: String,
    pub control_port: u16,
    pub name: String,
    pub timing_json: Option<String>,
    pub auto_monitor: bool,
    pub agent_version_set: bool,
}

pub const DEFAULT_AGENT: &str = concat!("chiral-interop-rust/", env!("CARGO_PKG_VERSION"), " (rust-libp2p 0.54.1)");

impl Args {
    pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            host: "127.0.0.1".into(),
            port: 0,
            seed: None,
            dht_protocol: "/ipfs/kad/1.0.0".into(),
            kad_mode: KadMode::Server,
            idle_timeout: None,
            identify_protocol_version: "ipfs/0.1.0".into(),
            agent_version: DEFAULT_AGENT.into(),
            admit_agent_prefixes: vec![],
            routable_only: false,
            max_connections: None,
            max_connections_per_peer: None,
            max_pending_incoming: None,
            bootstrap: vec![],
            exit_on_stdin_close: false,
            control_token_file: None,
            control_host: "127.0.0.1".into(),
            control_port: 0,
            name: "rust-peer".into(),
            timing_json: None,
            auto_monitor: true,
            agent_version_set: false,
        };
        let mut it = argv.into_iter();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match flag.as_str() {
                "--host" => a.host = value("--host")?,
                "--port" => a.port = number(&flag, &value("--port")?)?,
                "--seed" => a.seed = Some(value("--seed")?),
                "--dht-protocol" => {
                    let p = value("--dht-protocol")?;
                    if !p.starts_with('/') {
                        return Err(format!("--dht-protocol {p:?}: a protocol name starts with \"/\", e.g. /ipfs/kad/1.0.0"));
                    }
                    a.dht_protocol = p
                }
                "--kad-mode" => {
                    a.kad_mode = match value("--kad-mode")?.as_str() {
                        "server" => KadMode::Server,
                        "client" => KadMode::Client,
                        "auto" => KadMode::Auto,
                        other => return Err(format!("--kad-mode {other:?}: use server, client or auto")),
                    }
                }
                "--idle-timeout" => {
                    let v = value("--idle-timeout")?;
                    let secs: f64 = v.parse().map_err(|_| format!("--idle-timeout {v:?}: seconds, e.g. 0 or 10"))?;
                    if !(0.0..=86_400.0).contains(&secs) {
                        return Err(format!("--idle-timeout {v}: between 0 and 86400 seconds"));
                    }
                    a.idle_timeout = Some(Duration::from_secs_f64(secs))
                }
                "--identify-protocol-version" => a.identify_protocol_version = value(&flag)?,
                "--agent-version" => {
                    a.agent_version = value(&flag)?;
                    a.agent_version_set = true
                }
                "--admit-agent-prefix" => a.admit_agent_prefixes.push(value(&flag)?),
                "--routable-only" => a.routable_only = true,
                "--max-connections" => a.max_connections = Some(number(&flag, &value(&flag)?)?),
                "--max-connections-per-peer" => a.max_connections_per_peer = Some(number(&flag, &value(&flag)?)?),
                "--max-pending-incoming" => a.max_pending_incoming = Some(number(&flag, &value(&flag)?)?),
                "--bootstrap" => a.bootstrap.push(value(&flag)?),
                "--exit-on-stdin-close" => a.exit_on_stdin_close = true,
                "--control-token-file" => a.control_token_file = Some(value(&flag)?),
                "--control-host" => a.control_host = value(&flag)?,
                "--control-port" => a.control_port = number(&flag, &value(&flag)?)?,
                "--name" => a.name = value(&flag)?,
                "--timing" => a.timing_json = Some(value(&flag)?),
                "--no-auto-monitor" => a.auto_monitor = false,
                "--help" | "-h" => return Err(String::new()),
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if a.control_token_file.is_none() {
            a.control_token_file = std::env::var("CHIRAL_CONTROL_TOKEN_FILE").ok().filter(|v| !v.is_empty());
        }
        Ok(a)
    }

    /// A harness peer: serves the control channel and connects when told, not at start.
    pub fn controlled(&self) -> bool {
        self.control_token_file.is_some()
    }

    /// One line stating every knob, printed at start so a run's record shows what the node under test did.
    pub fn summary(&self) -> String {
        let opt = |v: Option<u32>| v.map_or("unlimited".to_string(), |n| n.to_string());
        format!(
            "kad-mode={:?} dht-protocol={} idle-timeout={} identify-protocol-version={:?} agent-version={:?} admit-agent-prefix={:?} routable-only={} max-connections={} max-connections-per-peer={} max-pending-incoming={}",
            self.kad_mode,
            self.dht_protocol,
            match (self.idle_timeout, self.controlled()) {
                (Some(d), _) => format!("{}s", d.as_secs_f64()),
                (None, true) => "3600s(harness peer)".to_string(),
                (None, false) => "library-default(0s)".to_string(),
            },
            self.identify_protocol_version,
            self.agent_version,
            self.admit_agent_prefixes,
            self.routable_only,
            opt(self.max_connections),
            opt(self.max_connections_per_peer),
            opt(self.max_pending_incoming),
        )
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag} {v:?}: not a valid number"))
}
