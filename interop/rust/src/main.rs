//! A rust-libp2p node configured the way deployed rust-libp2p bootstraps are: TCP, noise, yamux, identify, ping,
//! Kademlia on a chosen protocol name, addresses added to Kademlia from identify (optionally only routable ones),
//! an agent-version admission policy and connection limits. chiral-sim runs it as `role: external` and reaches
//! it only through libp2p.
//!
//! Prints `listening on <multiaddr>/p2p/<peer id>` on stdout once it accepts connections; logs what it does
//! (connections, identify, admission, routing-table changes, FIND_NODE answers) on stderr, one event a line.
//! Stops on SIGTERM/SIGINT, and with `--exit-on-stdin-close` when its stdin closes (its parent is gone).
//!
//! With --control-token-file it is a scenario peer (`implementation: rust`): it serves chiral-sim's control channel
//! (control.rs, peer.rs and the command modules; nodes/contract.schema.json), prints `CHIRAL_READY {...}` once that
//! listens, connects when told instead of at start, and stops on the shutdown command too.

mod addr;
mod args;
mod connect;
mod control;
mod discovery;
mod events;
mod health;
mod kadwire;
mod node;
mod peer;
mod request;

use args::{Args, KadMode};
use futures::StreamExt;
use libp2p::{
    connection_limits::{self, ConnectionLimits},
    identify, identity,
    kad::{self, store::MemoryStore},
    noise, ping,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use sha2::{Digest, Sha256};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    /// Raw outbound streams for a harness peer's checks (node.rs); it accepts none.
    streams: libp2p_stream::Behaviour,
}

/// A harness peer keeps idle connections as js-libp2p and go-libp2p do (an hour), unless --idle-timeout says
/// otherwise: its routing table and the matrix read its connections.
const CONTROLLED_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

macro_rules! log {
    ($($t:tt)*) => { eprintln!("chiral-rust-node: {}", format!($($t)*)) };
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                println!("{}", args::USAGE);
                return ExitCode::SUCCESS;
            }
            eprintln!("chiral-rust-node: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let code = match run(args).await {
        Ok(()) => 0,
        Err(e) => {
            log!("error: {e}");
            1
        }
    };
    // Not a return: the runtime would wait for the blocking thread that reads stdin, which never ends while the
    // parent keeps the pipe open, and a SIGTERM would take the parent's whole grace period.
    std::process::exit(code)
}

/// The same seed gives the same peer ID as chiral-sim's js nodes and the go node: sha256(seed) is the Ed25519 seed.
fn keypair(seed: Option<&str>) -> identity::Keypair {
    match seed {
        Some(s) => identity::Keypair::ed25519_from_bytes(Sha256::digest(s.as_bytes()).to_vec())
            .expect("a 32-byte Ed25519 secret"),
        None => identity::Keypair::generate_ed25519(),
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let protocol = StreamProtocol::try_from_owned(args.dht_protocol.clone())?;
    let key = keypair(args.seed.as_deref());
    let local = key.public().to_peer_id();
    let limits = ConnectionLimits::default()
        .with_max_established(args.max_connections)
        .with_max_established_per_peer(args.max_connections_per_peer)
        .with_max_pending_incoming(args.max_pending_incoming);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key| {
            let mut kad = kad::Behaviour::with_config(local, MemoryStore::new(local), kad::Config::new(protocol.clone()));
            kad.set_mode(match args.kad_mode {
                KadMode::Server => Some(kad::Mode::Server),
                KadMode::Client => Some(kad::Mode::Client),
                KadMode::Auto => None,
            });
            let identify = identify::Config::new(args.identify_protocol_version.clone(), key.public());
            // A harness peer told no agent says what rust-libp2p itself says (as a js peer says js-libp2p's), not a
            // name an admission policy for the reference nodes would let in.
            let identify = if !args.controlled() || args.agent_version_set { identify.with_agent_version(args.agent_version.clone()) } else { identify };
            Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad,
                streams: libp2p_stream::Behaviour::new(),
            }
        })?
        .with_swarm_config(|c| match (args.idle_timeout, args.controlled()) {
            (Some(d), _) => c.with_idle_connection_timeout(d),
            (None, true) => c.with_idle_connection_timeout(CONTROLLED_IDLE_TIMEOUT),
            (None, false) => c,
        })
        .build();

    log!("rust-libp2p 0.54.1, peer {local}; {}", args.summary());
    swarm.listen_on(format!("/ip4/{}/tcp/{}", args.host, args.port).parse()?)?;
    let mut boots = Vec::new();
    for b in &args.bootstrap {
        let addr: Multiaddr = b.parse().map_err(|e| format!("--bootstrap {b:?}: {e}"))?;
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(format!("--bootstrap {b:?}: the multiaddr must end in /p2p/<peer id>").into());
        };
        boots.push((peer, addr));
    }

    // Signals are caught before the ready line: a parent may stop the node the moment it reads it.
    use tokio::signal::unix::{signal, SignalKind};
    let (mut sigterm, mut sigint) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    let listen = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    println!("listening on {listen}/p2p/{local}");

    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::channel::<String>(4);
    let (harness, mut swarm_rx) = if args.controlled() {
        let (peer, rx) = harness_peer(&args, &mut swarm, protocol.clone(), stop_tx.clone())?;
        let token = control::read_token_file(args.control_token_file.as_deref().unwrap_or_default())?;
        let url = control::serve(
            control::Control { name: args.name.clone(), token_hash: control::hash(&token), bound_host: args.control_host.clone(), commands: peer.clone(), events: peer.events.clone() },
            &args.control_host,
            args.control_port,
        )
        .await?;
        let ready = serde_json::json!({ "control": url, "peerId": local.to_string(), "multiaddrs": peer::Peer::multiaddrs(&[listen.clone()], local) });
        println!("CHIRAL_READY {ready}");
        (Some(peer), rx)
    } else {
        // As a plain peer it dials its bootstraps and runs a Kademlia bootstrap once connected.
        for (peer, addr) in &boots {
            swarm.behaviour_mut().kad.add_address(peer, addr.clone());
            swarm.dial(addr.clone())?;
        }
        (None, tokio::sync::mpsc::unbounded_channel().1)
    };

    if args.exit_on_stdin_close {
        let stop = stop_tx.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            let _ = stop.send("stdin closed (the parent is gone)".into()).await;
        });
    }
    let mut bootstrapped = false;
    loop {
        tokio::select! {
            event = swarm.select_next_some() => {
                if let Some(p) = &harness {
                    node::observe(&p.node.net, &event);
                }
                handle(&mut swarm, &args, &protocol, event, harness.as_deref(), &mut bootstrapped)
            }
            Some(f) = swarm_rx.recv() => f(&mut swarm),
            Some(why) = stop_rx.recv() => { log!("{why}: stopping"); return Ok(()) }
            _ = sigterm.recv() => { log!("SIGTERM: stopping"); return Ok(()) }
            _ = sigint.recv() => { log!("SIGINT: stopping"); return Ok(()) }
        }
    }
}

/// The scenario peer's command side: timing from --timing, the event log, the shared state.
fn harness_peer(
    args: &Args,
    swarm: &mut Swarm<Behaviour>,
    protocol: StreamProtocol,
    stop: tokio::sync::mpsc::Sender<String>,
) -> Result<(Arc<peer::Peer>, tokio::sync::mpsc::UnboundedReceiver<node::SwarmFn>), String> {
    let t: peer::Timing = match &args.timing_json {
        // Unknown fields are ignored: the harness sends its whole timing object, of which this node uses a part.
        Some(j) => serde_json::from_str(j).map_err(|e| format!("--timing: not a JSON timing object: {e}"))?,
        None => peer::Timing::default(),
    };
    let (n, rx) = node::Node::new(*swarm.local_peer_id(), protocol, swarm.behaviour().streams.new_control(), args.kad_mode == KadMode::Server);
    let events = Arc::new(events::EventLog::new(&args.name, 10_000));
    let mut bootstrap_ids = std::collections::BTreeSet::new();
    for b in &args.bootstrap {
        if let Some(p) = b.parse::<Multiaddr>().ok().as_ref().and_then(connect::peer_of) {
            bootstrap_ids.insert(p);
        }
    }
    let p = Arc::new_cyclic(|this| peer::Peer {
        name: args.name.clone(),
        args: args.clone(),
        t,
        node: n,
        events,
        state: std::sync::Mutex::new(peer::State { bootstrap_ids, ..Default::default() }),
        monitor: health::Monitor::default(),
        stop,
        this: this.clone(),
    });
    Ok((p, rx))
}

fn handle(
    swarm: &mut Swarm<Behaviour>,
    args: &Args,
    protocol: &StreamProtocol,
    event: SwarmEvent<BehaviourEvent>,
    harness: Option<&peer::Peer>,
    bootstrapped: &mut bool,
) {
    match event {
        SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
            let side = if endpoint.is_dialer() { "outbound" } else { "inbound" };
            log!("connection established: {peer_id} {side} {} ({num_established} open)", endpoint.get_remote_address());
            if endpoint.is_dialer() && !*bootstrapped && !args.bootstrap.is_empty() && harness.is_none() {
                *bootstrapped = swarm.behaviour_mut().kad.bootstrap().is_ok();
            }
        }
        SwarmEvent::ConnectionClosed { peer_id, cause, num_established, .. } => {
            let why = cause.map_or("closed by the remote or idle timeout".to_string(), |c| c.to_string());
            log!("connection closed: {peer_id} ({why}; {num_established} still open)");
        }
        SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
            log!("incoming connection from {send_back_addr} refused: {error}");
        }
        SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
            log!("dial {} failed: {error}", peer_id.map_or("?".to_string(), |p| p.to_string()));
        }
        SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
            on_identified(swarm, args, protocol, peer_id, info);
        }
        SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Error { peer_id, error, .. })) => {
            log!("identify with {peer_id} failed: {error}");
        }
        SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => match event {
            kad::Event::RoutingUpdated { peer, addresses, is_new_peer, old_peer, .. } => {
                log!("routing table {}: {peer} at {:?}", if is_new_peer { "added" } else { "updated" }, addresses.iter().collect::<Vec<_>>());
                if let Some(h) = harness {
                    let size = swarm.behaviour_mut().kad.kbuckets().map(|b| b.num_entries()).sum();
                    h.on_routing_update(peer, is_new_peer, old_peer, size);
                }
            }
            kad::Event::UnroutablePeer { peer } => log!("kad: {peer} speaks the DHT but no address of it is known: not in the routing table"),
            kad::Event::InboundRequest { request: kad::InboundRequest::FindNode { num_closer_peers } } => {
                log!("answered FIND_NODE with {num_closer_peers} peers");
            }
            kad::Event::ModeChanged { new_mode } => log!("kad mode: {new_mode}"),
            kad::Event::OutboundQueryProgressed { result: kad::QueryResult::Bootstrap(r), step, .. } if step.last => {
                log!("kad bootstrap finished: {r:?}");
            }
            _ => {}
        },
        _ => {}
    }
}

/// What a deployed rust bootstrap does on identify: admit or reject the peer by its agent, then tell Kademlia the
/// addresses it may dial the peer at (rust-libp2p's Kademlia learns them from nowhere else for inbound peers).
fn on_identified(swarm: &mut Swarm<Behaviour>, args: &Args, protocol: &StreamProtocol, peer: PeerId, info: identify::Info) {
    let speaks_dht = info.protocols.iter().any(|p| p == protocol);
    log!("identified {peer}: agent {:?}, protocol version {:?}, {} protocols{}, listen {:?}",
        info.agent_version, info.protocol_version, info.protocols.len(), if speaks_dht { " incl. the DHT" } else { ", not the DHT" },
        info.listen_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    if !args.admit_agent_prefixes.is_empty() && !args.admit_agent_prefixes.iter().any(|p| info.agent_version.starts_with(p.as_str())) {
        log!("admission: disconnecting {peer}: agent {:?} matches none of {:?}", info.agent_version, args.admit_agent_prefixes);
        let _ = swarm.disconnect_peer_id(peer);
        return;
    }
    if !speaks_dht {
        return;
    }
    let (keep, drop): (Vec<_>, Vec<_>) = info.listen_addrs.into_iter().partition(|a| !args.routable_only || addr::is_routable(a));
    if !drop.is_empty() {
        log!("address filter: not adding {peer}'s non-routable addresses {:?}", drop.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    }
    for a in keep {
        swarm.behaviour_mut().kad.add_address(&peer, a);
    }
}
