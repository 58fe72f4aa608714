// Command chiral-go-node is a go-libp2p node configured the way deployed go-libp2p bootstraps are: TCP, noise,
// yamux, identify, ping, go-libp2p-kad-dht on a chosen protocol name, an agent-version admission policy, an
// optional routable-only address filter and connection limits. chiral-sim runs it as `role: external` and reaches
// it only through libp2p, or, with --control-token-file, as a scenario peer (`implementation: go`) that serves
// chiral-sim's control channel (control.go, peer.go, health.go; nodes/contract.schema.json) and connects when told.
//
// Prints `listening on <multiaddr>/p2p/<peer id>` on stdout once it accepts connections (and, as a peer, the
// `CHIRAL_READY {...}` line once its control channel listens); logs what it does on stderr, one event a line. Stops
// on SIGTERM/SIGINT, on the shutdown command, and with -exit-on-stdin-close when its stdin closes.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chiral-go-node: "+format+"\n", args...)
}

func main() {
	cfg, err := parseArgs(os.Args[1:])
	if errors.Is(err, errHelp) {
		fmt.Println(usage)
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chiral-go-node: %v\n%s\n", err, usage)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		logf("error: %v", err)
		os.Exit(1)
	}
}

// identity: the same seed gives the same peer ID as chiral-sim's js nodes and the rust node (sha256(seed) is the
// Ed25519 seed).
func identity(seed string) (crypto.PrivKey, error) {
	if seed == "" {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		return priv, err
	}
	sum := sha256.Sum256([]byte(seed))
	return crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(sum[:]))
}

func run(cfg config) error {
	priv, err := identity(cfg.seed)
	if err != nil {
		return err
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/tcp/%d", cfg.host, cfg.port)),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ProtocolVersion(cfg.identifyProtocolVersion),
		libp2p.DisableRelay(),
	}
	// A harness peer told no agent says what go-libp2p itself says (as a js peer says js-libp2p's), not a name an
	// admission policy for the reference nodes would let in.
	if cfg.controlTokenFile == "" || cfg.agentVersionSet {
		opts = append(opts, libp2p.UserAgent(cfg.agentVersion))
	}
	// go-libp2p's own default resource manager, with the connection limits asked for, seen through askWatcher.
	base := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&base)
	concrete := base.AutoScale()
	if cfg.maxConnections > 0 || cfg.maxConnectionsPerPeer > 0 {
		limits := rcmgr.PartialLimitConfig{}
		if cfg.maxConnections > 0 {
			limits.System.Conns = rcmgr.LimitVal(cfg.maxConnections)
			limits.System.ConnsInbound = rcmgr.LimitVal(cfg.maxConnections)
			limits.Transient.Conns = rcmgr.LimitVal(cfg.maxConnections)
			limits.Transient.ConnsInbound = rcmgr.LimitVal(cfg.maxConnections)
		}
		if cfg.maxConnectionsPerPeer > 0 {
			limits.PeerDefault.Conns = rcmgr.LimitVal(cfg.maxConnectionsPerPeer)
			limits.PeerDefault.ConnsInbound = rcmgr.LimitVal(cfg.maxConnectionsPerPeer)
		}
		concrete = limits.Build(concrete)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(concrete))
	if err != nil {
		return err
	}
	asks := newIdentifyAsks()
	opts = append(opts, libp2p.ResourceManager(askWatcher{rm, asks}))
	h, err := libp2p.New(opts...)
	if err != nil {
		return err
	}
	defer h.Close()

	dhtOpts := []dht.Option{dht.Mode(cfg.kadMode), dht.V1ProtocolOverride(protocol.ID(cfg.dhtProtocol))}
	if cfg.routableOnly {
		// What dual.New does for its WAN DHT: a peer enters the routing table only with a public address, and
		// addresses learnt from queries are filtered the same way. (kad-dht's defaults filter nothing.)
		dhtOpts = append(dhtOpts, dht.AddressFilter(routable), dht.RoutingTableFilter(dht.PublicRoutingTableFilter))
	}
	var boots []peer.AddrInfo
	for _, b := range cfg.bootstrap {
		ai, err := peer.AddrInfoFromString(b)
		if err != nil {
			return fmt.Errorf("-bootstrap %q: %w", b, err)
		}
		boots = append(boots, *ai)
	}
	// As a harness peer the node connects when told to (connectWithTimeout), not on its own.
	controlled := cfg.controlTokenFile != ""
	if len(boots) > 0 && !controlled {
		dhtOpts = append(dhtOpts, dht.BootstrapPeers(boots...))
	}
	kad, err := dht.New(h, dhtOpts...)
	if err != nil {
		return err
	}
	defer kad.Close()
	// Signals are caught before the ready line: a parent may stop the node the moment it reads it.
	stop := make(chan string, 1)
	var peerCmds *peerNode
	var control *controlServer
	if controlled {
		if peerCmds, control, err = newControl(cfg, h, kad, asks, stop); err != nil {
			return err
		}
	}
	rt := kad.RoutingTable()
	added, removed := rt.PeerAdded, rt.PeerRemoved
	rt.PeerAdded = func(p peer.ID) {
		added(p)
		logf("routing table added: %s", p)
		if peerCmds != nil {
			peerCmds.onRoutingAdd(p)
		}
	}
	rt.PeerRemoved = func(p peer.ID) {
		removed(p)
		logf("routing table removed: %s", p)
		if peerCmds != nil {
			peerCmds.onRoutingRemove(p)
		}
	}

	logf("go-libp2p v0.49.0 + go-libp2p-kad-dht v0.42.2, peer %s; %s", h.ID(), cfg.summary())
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			logf("connection established: %s %s %s", c.RemotePeer(), direction(c), c.RemoteMultiaddr())
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			logf("connection closed: %s %s", c.RemotePeer(), direction(c))
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := watchIdentify(ctx, h, cfg); err != nil {
		return err
	}
	if cfg.idleTimeout >= 0 {
		go closeIdle(ctx, h, cfg.idleTimeout)
	}
	for _, ai := range boots {
		if controlled {
			break
		}
		go func(ai peer.AddrInfo) {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := h.Connect(c, ai); err != nil {
				logf("dial %s failed: %v", ai.ID, err)
				return
			}
			if err := kad.Bootstrap(ctx); err != nil {
				logf("kad bootstrap: %v", err)
			}
		}(ai)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { s := <-sigs; stop <- s.String() }()
	addrs := h.Addrs()
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	fmt.Printf("listening on %s/p2p/%s\n", addrs[0], h.ID())
	if control != nil {
		url, err := serveControl(cfg, control)
		if err != nil {
			return err
		}
		ready, _ := json.Marshal(map[string]any{"control": url, "peerId": h.ID().String(), "multiaddrs": peerCmds.multiaddrs()})
		fmt.Printf("CHIRAL_READY %s\n", ready)
	}
	if cfg.exitOnStdinClose {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop <- "stdin closed (the parent is gone)" }()
	}
	logf("%s: stopping", <-stop)
	return nil
}

func direction(c network.Conn) string {
	if c.Stat().Direction == network.DirInbound {
		return "inbound"
	}
	return "outbound"
}

// watchIdentify applies the admission policy once identify has told the peer's agent, the way deployed nodes do:
// the connection is already up (and the peer may already be in the routing table) when it is closed.
func watchIdentify(ctx context.Context, h host.Host, cfg config) error {
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return err
	}
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-sub.Out():
				ev := e.(event.EvtPeerIdentificationCompleted)
				speaks := false
				for _, p := range ev.Protocols {
					speaks = speaks || string(p) == cfg.dhtProtocol
				}
				logf("identified %s: agent %q, protocol version %q, %d protocols (DHT: %v), listen %v", ev.Peer, ev.AgentVersion, ev.ProtocolVersion, len(ev.Protocols), speaks, ev.ListenAddrs)
				if len(cfg.admitAgentPrefixes) > 0 && !hasAnyPrefix(ev.AgentVersion, cfg.admitAgentPrefixes) {
					logf("admission: disconnecting %s: agent %q matches none of %q", ev.Peer, ev.AgentVersion, cfg.admitAgentPrefixes)
					_ = h.Network().ClosePeer(ev.Peer)
				}
			}
		}
	}()
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// closeIdle gives go-libp2p the idle timeout rust-libp2p has (go-libp2p has none; its connection manager trims
// only above a high-water mark): a connection with no open stream for the timeout is closed, checked every 10 ms
// (an approximation: rust-libp2p closes at the instant its last stream ends). 0 closes it as soon
// as identify's stream is done, like rust-libp2p 0.53/0.54's default.
func closeIdle(ctx context.Context, h host.Host, timeout time.Duration) {
	idleSince := map[network.Conn]time.Time{}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			seen := map[network.Conn]bool{}
			for _, c := range h.Network().Conns() {
				seen[c] = true
				if len(c.GetStreams()) > 0 || !identifiedOn(h, c) {
					delete(idleSince, c)
					continue
				}
				since, ok := idleSince[c]
				if !ok {
					idleSince[c] = now
					since = now
				}
				if now.Sub(since) >= timeout {
					logf("idle timeout: closing the connection to %s (no stream open for %s)", c.RemotePeer(), timeout)
					_ = c.Close()
					delete(idleSince, c)
				}
			}
			for c := range idleSince {
				if !seen[c] {
					delete(idleSince, c)
				}
			}
		}
	}
}

// identifiedOn: identify has run on this connection, as rust-libp2p's idle timeout waits for identify's streams on
// each connection. The peerstore's agent (identified) also answers for a second connection from a peer seen
// before, which was then closed within a tick, before its identify: harsher than the node this emulates.
func identifiedOn(h host.Host, c network.Conn) bool {
	if withIDs, ok := h.(interface{ IDService() identify.IDService }); ok {
		select {
		case <-withIDs.IDService().IdentifyWait(c):
			return true
		default:
			return false
		}
	}
	return identified(h, c.RemotePeer())
}

// identified: the peerstore holds the agent identify reported, so identify's stream has come and gone.
func identified(h host.Host, p peer.ID) bool {
	v, err := h.Peerstore().Get(p, "AgentVersion")
	return err == nil && v != nil
}

// routable keeps the addresses another host on the internet could dial: no loopback, private or link-local ones.
func routable(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if manet.IsPublicAddr(a) {
			out = append(out, a)
		}
	}
	return out
}
