//! A rust-libp2p node configured the way deployed rust-libp2p bootstraps are: TCP, noise, yamux, identify, ping,
//! Kademlia on a chosen protocol name, addresses added to Kademlia from identify (optionally only routable ones),
//! an agent-version admission policy and connection limits. chiral-sim runs it as `role: external` and reaches
//! it only through libp2p.
//!
//! Prints `listening on <multiaddr>/p2p/<peer id>` on stdout once it accepts connections; logs what it does
//! (connections, identify, admission, routing-table changes, FIND_NODE answers) on stderr, one event a line.
//! Stops on SIGTERM/SIGINT, and with `--exit-on-stdin-close` when its stdin closes (its parent is gone).

mod addr;
mod args;

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
use tokio::io::AsyncReadExt;

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
}

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
            Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(
                    identify::Config::new(args.identify_protocol_version.clone(), key.public())
                        .with_agent_version(args.agent_version.clone()),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad,
            }
        })?
        .with_swarm_config(|c| match args.idle_timeout {
            Some(d) => c.with_idle_connection_timeout(d),
            None => c,
        })
        .build();

    log!("rust-libp2p 0.54.1, peer {local}; {}", args.summary());
    swarm.listen_on(format!("/ip4/{}/tcp/{}", args.host, args.port).parse()?)?;
    for b in &args.bootstrap {
        let addr: Multiaddr = b.parse().map_err(|e| format!("--bootstrap {b:?}: {e}"))?;
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(format!("--bootstrap {b:?}: the multiaddr must end in /p2p/<peer id>").into());
        };
        swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        swarm.dial(addr)?;
    }

    let (closed_tx, mut stdin_closed) = tokio::sync::mpsc::channel::<()>(1);
    if args.exit_on_stdin_close {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            let _ = closed_tx.send(()).await;
        });
    } else {
        std::mem::forget(closed_tx);
    }
    use tokio::signal::unix::{signal, SignalKind};
    let (mut sigterm, mut sigint) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    let mut announced = false;
    let mut bootstrapped = false;
    loop {
        tokio::select! {
            event = swarm.select_next_some() => handle(&mut swarm, &args, &protocol, event, &mut announced, &mut bootstrapped),
            _ = stdin_closed.recv() => { log!("stdin closed (the parent is gone): stopping"); return Ok(()) }
            _ = sigterm.recv() => { log!("SIGTERM: stopping"); return Ok(()) }
            _ = sigint.recv() => { log!("SIGINT: stopping"); return Ok(()) }
        }
    }
}

fn handle(
    swarm: &mut Swarm<Behaviour>,
    args: &Args,
    protocol: &StreamProtocol,
    event: SwarmEvent<BehaviourEvent>,
    announced: &mut bool,
    bootstrapped: &mut bool,
) {
    match event {
        SwarmEvent::NewListenAddr { address, .. } => {
            if !*announced {
                *announced = true;
                println!("listening on {address}/p2p/{}", swarm.local_peer_id());
            }
        }
        SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
            let side = if endpoint.is_dialer() { "outbound" } else { "inbound" };
            log!("connection established: {peer_id} {side} {} ({num_established} open)", endpoint.get_remote_address());
            if endpoint.is_dialer() && !*bootstrapped && !args.bootstrap.is_empty() {
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
            kad::Event::RoutingUpdated { peer, addresses, is_new_peer, .. } => {
                log!("routing table {}: {peer} at {:?}", if is_new_peer { "added" } else { "updated" }, addresses.iter().collect::<Vec<_>>());
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
