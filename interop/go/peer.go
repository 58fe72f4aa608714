package main

// The plan's backend commands (nodes/commands.ts) for a go-libp2p peer driven by chiral-sim, with go-libp2p-kad-dht
// doing the discovery. What go-libp2p cannot tell is said, never guessed: a dial error it reports without a cause
// is `unknown` with its text, "busy" (a chiral bootstrap's own answer) never occurs, and a peer that finds nobody
// is `unknown`, not "you might be first", since no external bootstrap says who else is online.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-msgio"
	mh "github.com/multiformats/go-multihash"
	msmux "github.com/multiformats/go-multistream"
	"google.golang.org/protobuf/proto"
)

// timing: the plan's durations as the harness computed them for this node (already scaled), in real ms.
type timing struct {
	ConnectionTimeoutMs             int `json:"connectionTimeoutMs"`
	HealthCheckIntervalMs           int `json:"healthCheckIntervalMs"`
	HealthPingTimeoutMs             int `json:"healthPingTimeoutMs"`
	HealthHistorySize               int `json:"healthHistorySize"`
	UptimeWindowMs                  int `json:"uptimeWindowMs"`
	HealthyLatencyMs                int `json:"healthyLatencyMs"`
	DegradedLatencyMs               int `json:"degradedLatencyMs"`
	HighLatencyConsecutiveChecks    int `json:"highLatencyConsecutiveChecks"`
	UnreachableAlertMs              int `json:"unreachableAlertMs"`
	DiscoveryVerificationDelayMs    int `json:"discoveryVerificationDelayMs"`
	DiscoveryPollIntervalMs         int `json:"discoveryPollIntervalMs"`
	BidirectionalDiscoveryTimeoutMs int `json:"bidirectionalDiscoveryTimeoutMs"`
	DhtQueryTimeoutMs               int `json:"dhtQueryTimeoutMs"`
	PeerDialTimeoutMs               int `json:"peerDialTimeoutMs"`
}

// The plan's defaults (nodes/config.ts), for fields the harness did not send.
func defaultTiming() timing {
	return timing{10_000, 30_000, 5_000, 20, 3_600_000, 200, 500, 3, 120_000, 3_000, 2_000, 15_000, 10_000, 10_000}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
func nowMs() int64           { return time.Now().UnixMilli() }

// The plan's categories and texts (nodes/errors.ts).
var categoryText = map[string][2]string{
	"timeout":           {"Bootstrap not responding - may be down", "Try again later or check internet connection"},
	"refused":           {"Bootstrap server not available", "The bootstrap is not accepting connections; try another bootstrap or try again later"},
	"unreachable":       {"Check your internet connection", "The bootstrap address cannot be reached from this machine; check your network connection and the bootstrap address"},
	"already-connected": {"DHT already running on this port", "Stop the other DHT instance or use a different port, then connect again"},
	"busy":              {"Bootstrap is busy - retrying with a longer timeout", "Wait for the retry; if the bootstrap stays busy, try another bootstrap later"},
	"protocol":          {"The remote does not speak the DHT protocol - wrong protocol or not a bootstrap", "Check that the address points to a bootstrap node running the same DHT protocol version"},
	"rejected":          {"Bootstrap closed the connection after identify - this client was not admitted", "The bootstrap is up but drops this client once it learns its agent version or protocols (an admission policy?); check what it admits against this node's agentVersion and DHT protocol, or try another bootstrap"},
	"unknown":           {"Could not connect to the bootstrap", "Try again; if the problem persists, check the event log for details"},
}

type categorized struct {
	Category        string `json:"category"`
	Message         string `json:"message"`
	SuggestedAction string `json:"suggestedAction"`
	Detail          string `json:"detail"`
}

func categorize(category, detail string) *categorized {
	t := categoryText[category]
	return &categorized{category, t[0], t[1], detail}
}

// categorizeDial reads go-libp2p's dial error. go-libp2p wraps the socket error's text, so the cause is found in it;
// an error that names none is `unknown` with its text.
func categorizeDial(err error, timedOut bool) *categorized {
	text := err.Error()
	switch {
	case timedOut || errors.Is(err, context.DeadlineExceeded) || strings.Contains(text, "i/o timeout"):
		return categorize("timeout", text)
	case strings.Contains(text, "connection refused"), droppedInHandshake(text):
		return categorize("refused", text)
	case strings.Contains(text, "no route to host"), strings.Contains(text, "network is unreachable"), strings.Contains(text, "host is unreachable"):
		return categorize("unreachable", text)
	case strings.Contains(text, "protocols not supported"), strings.Contains(text, "protocol not supported"), strings.Contains(text, "peer id mismatch"):
		return categorize("protocol", text)
	}
	return categorize("unknown", text)
}

// droppedInHandshake: the remote took the TCP connection and dropped it during the security or muxer handshake
// (EOF, a reset, a noise message cut short): how a node at its connection limit, or one that is dropping us, says no
// (the js node reads the same as "refused").
func droppedInHandshake(text string) bool {
	if !strings.Contains(text, "failed to negotiate") {
		return false
	}
	for _, cut := range []string{"EOF", "connection reset", "message is too short", "broken pipe"} {
		if strings.Contains(text, cut) {
			return true
		}
	}
	return false
}

type attempt struct {
	Attempt    int          `json:"attempt"`
	Bootstrap  string       `json:"bootstrap"`
	TimeoutMs  int          `json:"timeoutMs"`
	StartedAt  int64        `json:"startedAt"`
	EndedAt    int64        `json:"endedAt"`
	DurationMs int64        `json:"durationMs"`
	Outcome    string       `json:"outcome"`
	Error      *categorized `json:"error,omitempty"`
}

type dialFailure struct {
	PeerID   string `json:"peerId"`
	Category string `json:"category"`
	Detail   string `json:"detail"`
	At       int64  `json:"at"`
}

type peerNode struct {
	name   string
	cfg    config
	t      timing
	h      host.Host
	kad    *dht.IpfsDHT
	asks   *identifyAsks
	events *eventLog
	stop   chan<- string

	mu                  sync.Mutex
	bootstrapIDs        map[peer.ID]bool
	currentBootstrap    string
	connectedAt         int64
	firstWalkAt         int64
	attempts            []attempt
	lastError           *categorized
	dialFailures        []dialFailure
	discovered          map[peer.ID]bool
	lastDiscoveryAt     int64
	queries, queriesOK  int
	lastWrite, lastRead int64
	monitor             *monitor
	rtSize              int
	rtAdds              int
}

func newPeerNode(name string, cfg config, t timing, h host.Host, kad *dht.IpfsDHT, asks *identifyAsks, events *eventLog, stop chan<- string) *peerNode {
	p := &peerNode{name: name, cfg: cfg, t: t, h: h, kad: kad, asks: asks, events: events, stop: stop, bootstrapIDs: map[peer.ID]bool{}, discovered: map[peer.ID]bool{}}
	for _, b := range cfg.bootstrap {
		if ai, err := peer.AddrInfoFromString(b); err == nil {
			p.bootstrapIDs[ai.ID] = true
		}
	}
	p.monitor = newMonitor(p)
	return p
}

// onRoutingAdd/Remove are kad-dht's routing-table callbacks (run under the table's lock): the events and the
// discovery metrics.
func (p *peerNode) onRoutingAdd(id peer.ID) {
	p.mu.Lock()
	if !p.bootstrapIDs[id] {
		p.discovered[id] = true
		p.lastDiscoveryAt = nowMs()
	}
	if p.firstWalkAt == 0 && p.connectedAt != 0 {
		p.firstWalkAt = nowMs()
	}
	p.rtSize++
	p.rtAdds++
	size := p.rtSize
	p.mu.Unlock()
	p.events.emit("routing:add", map[string]any{"peerId": id.String(), "size": size})
}

// Called under the routing table's lock: asking the table its size here would deadlock, so it is counted.
func (p *peerNode) onRoutingRemove(id peer.ID) {
	p.mu.Lock()
	p.rtSize--
	size := p.rtSize
	p.mu.Unlock()
	p.events.emit("routing:remove", map[string]any{"peerId": id.String(), "size": size})
}

func (p *peerNode) query(ok bool) {
	p.mu.Lock()
	p.queries++
	if ok {
		p.queriesOK++
	}
	p.mu.Unlock()
}

// decode parses a request strictly, as the zod schemas do: an unknown field is a bad-request naming it.
func decode(command string, raw json.RawMessage, into any) error {
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		field := ""
		if m := strings.SplitN(err.Error(), "unknown field ", 2); len(m) == 2 {
			field = strings.Trim(m[1], `"`)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = te.Field
		}
		return badRequest(field, "%s: %s", command, err.Error())
	}
	return nil
}

func (p *peerNode) multiaddrs() []string {
	out := []string{}
	for _, a := range p.h.Addrs() {
		out = append(out, fmt.Sprintf("%s/p2p/%s", a, p.h.ID()))
	}
	return out
}

func (p *peerNode) routingPeers() (all []peer.ID, others []peer.ID) {
	all = p.kad.RoutingTable().ListPeers()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range all {
		if !p.bootstrapIDs[id] {
			others = append(others, id)
		}
	}
	return all, others
}

func ids(list []peer.ID) []string {
	out := []string{}
	for _, id := range list {
		out = append(out, id.String())
	}
	sort.Strings(out)
	return out
}

// commands maps the contract's command names to handlers; the ones absent answer not-supported.
func (p *peerNode) commands() map[string]handlerFunc {
	return map[string]handlerFunc{
		"info":    none("info", func(context.Context) any { return p.info() }),
		"inspect": none("inspect", func(context.Context) any { return p.inspect() }),
		"connectWithTimeout": func(raw json.RawMessage, done <-chan struct{}) (any, error) {
			var req struct {
				BootstrapAddrs []string `json:"bootstrapAddrs"`
				TimeoutMs      *int     `json:"timeoutMs"`
			}
			if err := decode("connectWithTimeout", raw, &req); err != nil {
				return nil, err
			}
			timeout := p.t.ConnectionTimeoutMs
			if req.TimeoutMs != nil {
				if *req.TimeoutMs < 5000 || *req.TimeoutMs > 30000 {
					return nil, badRequest("timeoutMs", "connectWithTimeout: field \"timeoutMs\": must be 5000–30000 (the plan allows 5–30 s)")
				}
				timeout = *req.TimeoutMs
			}
			addrs := req.BootstrapAddrs
			if len(addrs) == 0 {
				addrs = p.cfg.bootstrap
			}
			if len(addrs) == 0 {
				return nil, badRequest("bootstrapAddrs", "connectWithTimeout: no bootstrap address: give bootstrapAddrs or start the node with --bootstrap")
			}
			return p.connect(ctxOf(done), addrs, timeout), nil
		},
		"checkBootstrapHealth": withAddress("checkBootstrapHealth", p, func(ctx context.Context, addr string) any { return p.checkHealth(ctx, addr) }),
		"startHealthMonitoring": withAddress("startHealthMonitoring", p, func(_ context.Context, addr string) any {
			p.monitor.start(addr)
			return p.monitor.state()
		}),
		"stopHealthMonitoring": none("stopHealthMonitoring", func(context.Context) any { p.monitor.halt(); return p.monitor.state() }),
		"getHealth":            none("getHealth", func(context.Context) any { return p.monitor.state() }),
		"getDhtRoutingTableSize": none("getDhtRoutingTableSize", func(context.Context) any {
			all, others := p.routingPeers()
			return map[string]int{"size": len(all), "peers": len(others)}
		}),
		"refreshRoutingTable": none("refreshRoutingTable", func(ctx context.Context) any {
			ctx, cancel := context.WithTimeout(ctx, ms(p.t.DhtQueryTimeoutMs))
			defer cancel()
			select {
			case <-p.kad.RefreshRoutingTable():
			case <-ctx.Done():
			}
			all, others := p.routingPeers()
			return map[string]int{"size": len(all), "peers": len(others)}
		}),
		"testPeerDiscovery": func(raw json.RawMessage, done <-chan struct{}) (any, error) {
			req := struct {
				TestContent string `json:"testContent"`
			}{TestContent: "discovery-test"}
			if err := decode("testPeerDiscovery", raw, &req); err != nil {
				return nil, err
			}
			return p.testDiscovery(ctxOf(done), req.TestContent), nil
		},
		"listDiscoveredPeerIds": none("listDiscoveredPeerIds", func(context.Context) any {
			_, others := p.routingPeers()
			return map[string]any{"peerIds": ids(others)}
		}),
		"verifyPeerReachable": func(raw json.RawMessage, done <-chan struct{}) (any, error) {
			var req struct {
				PeerID string `json:"peerId"`
				Fresh  bool   `json:"fresh"`
			}
			if err := decode("verifyPeerReachable", raw, &req); err != nil {
				return nil, err
			}
			id, err := peer.Decode(req.PeerID)
			if err != nil {
				return nil, badRequest("peerId", "verifyPeerReachable: field \"peerId\": not a peer ID; expected e.g. 12D3KooW…")
			}
			return p.verifyReachable(ctxOf(done), id, req.Fresh), nil
		},
		"findPeer": func(raw json.RawMessage, done <-chan struct{}) (any, error) {
			var req struct {
				PeerID string `json:"peerId"`
				Via    string `json:"via"`
			}
			if err := decode("findPeer", raw, &req); err != nil {
				return nil, err
			}
			id, err := peer.Decode(req.PeerID)
			if err != nil {
				return nil, badRequest("peerId", "findPeer: field \"peerId\": not a peer ID; expected e.g. 12D3KooW…")
			}
			var via peer.ID
			if req.Via != "" {
				if via, err = peer.Decode(req.Via); err != nil {
					return nil, badRequest("via", "findPeer: field \"via\": not a peer ID; expected e.g. 12D3KooW…")
				}
			}
			return p.findPeer(ctxOf(done), id, via), nil
		},
		"getProviderRecords": func(raw json.RawMessage, done <-chan struct{}) (any, error) {
			c, err := cidRequest("getProviderRecords", raw)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(ctxOf(done), ms(p.t.DhtQueryTimeoutMs))
			defer cancel()
			provs, err := p.kad.FindProviders(ctx, c)
			p.query(err == nil)
			if err == nil {
				p.mu.Lock()
				p.lastRead = nowMs()
				p.mu.Unlock()
			}
			out := []string{}
			for _, ai := range provs {
				out = append(out, ai.ID.String())
			}
			return map[string]any{"providers": out}, nil
		},
		"provide": func(raw json.RawMessage, done <-chan struct{}) (any, error) {
			c, err := cidRequest("provide", raw)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(ctxOf(done), ms(p.t.DhtQueryTimeoutMs))
			defer cancel()
			if err := p.kad.Provide(ctx, c, true); err != nil {
				return map[string]any{"ok": false, "error": err.Error()}, nil
			}
			p.mu.Lock()
			p.lastWrite = nowMs()
			p.mu.Unlock()
			return map[string]any{"ok": true}, nil
		},
		"verifyPeerDiscovery": none("verifyPeerDiscovery", func(ctx context.Context) any { return p.verifyDiscovery(ctx) }),
		"waitForBidirectionalDiscovery": func(raw json.RawMessage, done <-chan struct{}) (any, error) {
			var req struct {
				PeerIDs   []string `json:"peerIds"`
				TimeoutMs *int     `json:"timeoutMs"`
			}
			if err := decode("waitForBidirectionalDiscovery", raw, &req); err != nil {
				return nil, err
			}
			want := []peer.ID{}
			for i, s := range req.PeerIDs {
				id, err := peer.Decode(s)
				if err != nil {
					return nil, badRequest(fmt.Sprintf("peerIds.%d", i), "waitForBidirectionalDiscovery: field \"peerIds.%d\": not a peer ID", i)
				}
				want = append(want, id)
			}
			timeout := p.t.BidirectionalDiscoveryTimeoutMs
			if req.TimeoutMs != nil {
				timeout = *req.TimeoutMs
			}
			return p.waitBidirectional(ctxOf(done), want, req.PeerIDs == nil, timeout), nil
		},
		"getMetrics": none("getMetrics", func(context.Context) any { return p.metrics() }),
		"shutdown": none("shutdown", func(context.Context) any {
			// Answer first, then stop: the harness waits for the exit.
			go func() { time.Sleep(50 * time.Millisecond); p.stop <- "shutdown command" }()
			return map[string]any{"ok": true}
		}),
	}
}

// withAddress: a command on one bootstrap ({ address? }), by default the one connected to (or the first configured).
func withAddress(command string, p *peerNode, f func(ctx context.Context, addr string) any) handlerFunc {
	return func(raw json.RawMessage, done <-chan struct{}) (any, error) {
		var req struct {
			Address string `json:"address"`
		}
		if err := decode(command, raw, &req); err != nil {
			return nil, err
		}
		addr := req.Address
		if addr == "" {
			addr = p.bootstrapAddress()
		}
		if addr == "" {
			return nil, badRequest("address", "%s: not connected to a bootstrap; give an address", command)
		}
		return f(ctxOf(done), addr), nil
	}
}

// none: a command without arguments, which refuses any it is given (the contract's requests are strict objects).
func none(command string, f func(ctx context.Context) any) handlerFunc {
	return func(raw json.RawMessage, done <-chan struct{}) (any, error) {
		if err := decode(command, raw, &struct{}{}); err != nil {
			return nil, err
		}
		return f(ctxOf(done)), nil
	}
}

func cidRequest(command string, raw json.RawMessage) (cid.Cid, error) {
	var req struct {
		CID string `json:"cid"`
	}
	if err := decode(command, raw, &req); err != nil {
		return cid.Undef, err
	}
	c, err := cid.Decode(req.CID)
	if err != nil {
		return cid.Undef, badRequest("cid", "%s: field \"cid\": not a CID; expected e.g. bafkrei…", command)
	}
	return c, nil
}

// ctxOf: a handler's context ends when the caller goes away.
func ctxOf(done <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-done; cancel() }()
	return ctx
}

func (p *peerNode) info() map[string]any {
	return map[string]any{
		"name": p.name, "role": "peer", "peerId": p.h.ID().String(), "multiaddrs": p.multiaddrs(), "dhtProtocol": p.cfg.dhtProtocol,
		"versions": map[string]string{"node": "chiral-go-node 0.1.0", "libp2p": "go-libp2p v0.49.0", "kadDht": "go-libp2p-kad-dht v0.42.2"},
	}
}

func (p *peerNode) inspect() map[string]any {
	all, _ := p.routingPeers()
	mode := "server"
	if p.kad.Mode() == dht.ModeClient {
		mode = "client"
	}
	mapper := "passthrough"
	if p.cfg.routableOnly {
		mapper = "removePrivate"
	}
	protos := []string{}
	for _, pr := range p.h.Mux().Protocols() {
		protos = append(protos, string(pr))
	}
	sort.Strings(protos)
	conns := []map[string]any{}
	for _, c := range p.h.Network().Conns() {
		conns = append(conns, map[string]any{
			"peerId": c.RemotePeer().String(), "remoteAddr": fmt.Sprintf("%s/p2p/%s", c.RemoteMultiaddr(), c.RemotePeer()),
			"direction": direction(c), "status": "open", "limited": c.Stat().Limited, "openedAt": c.Stat().Opened.UnixMilli(),
		})
	}
	known := []map[string]any{}
	ps := p.h.Peerstore()
	for _, id := range ps.PeersWithAddrs() {
		if id == p.h.ID() {
			continue
		}
		addrs, mapped := []string{}, []string{}
		raw := ps.Addrs(id)
		for _, a := range raw {
			addrs = append(addrs, a.String())
		}
		keep := raw
		if p.cfg.routableOnly {
			keep = routable(raw)
		}
		for _, a := range keep {
			mapped = append(mapped, a.String())
		}
		pp := []string{}
		if got, err := ps.GetProtocols(id); err == nil {
			for _, pr := range got {
				pp = append(pp, string(pr))
			}
		}
		sort.Strings(pp)
		known = append(known, map[string]any{"peerId": id.String(), "addresses": addrs, "mappedAddresses": mapped, "protocols": pp, "identified": identified(p.h, id)})
	}
	p.mu.Lock()
	failures := append([]dialFailure{}, p.dialFailures...)
	disc := []peer.ID{}
	for id := range p.discovered {
		disc = append(disc, id)
	}
	p.mu.Unlock()
	return map[string]any{
		"name": p.name, "role": "peer", "peerId": p.h.ID().String(), "running": true, "multiaddrs": p.multiaddrs(),
		"dhtMode": mode, "dhtProtocol": p.cfg.dhtProtocol, "addressMapper": mapper, "protocols": protos,
		"routingTable": ids(all), "connections": conns, "knownPeers": known, "discoveredPeerIds": ids(disc),
		// go-libp2p-kad-dht admits a peer on identify's protocol list, without a ping: no admission ping can fail.
		"pingFailures": []string{}, "busyRefusals": 0, "dialFailures": failures,
	}
}

func (p *peerNode) bootstrapAddress() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.currentBootstrap != "" {
		return p.currentBootstrap
	}
	if len(p.cfg.bootstrap) > 0 {
		return p.cfg.bootstrap[0]
	}
	return ""
}

// connect: each address in order until one admits this node (failover), one attempt each; go-libp2p has no
// notion of a busy bootstrap, so there is no busy retry.
func (p *peerNode) connect(ctx context.Context, addrs []string, timeoutMs int) map[string]any {
	var attempts []attempt
	var last *categorized
	for i, a := range addrs {
		started := nowMs()
		outcome, cat := p.connectOnce(ctx, a, timeoutMs)
		ended := nowMs()
		at := attempt{Attempt: i + 1, Bootstrap: a, TimeoutMs: timeoutMs, StartedAt: started, EndedAt: ended, DurationMs: ended - started, Outcome: outcome, Error: cat}
		attempts = append(attempts, at)
		p.mu.Lock()
		p.attempts = append(p.attempts, at)
		if cat != nil {
			p.lastError = cat
		}
		p.mu.Unlock()
		if outcome == "success" {
			ai, _ := peer.AddrInfoFromString(a)
			p.mu.Lock()
			p.currentBootstrap = a
			p.connectedAt = ended
			p.bootstrapIDs[ai.ID] = true
			if p.firstWalkAt == 0 && p.rtSize > 0 {
				p.firstWalkAt = ended
			}
			p.mu.Unlock()
			// The walk kad-dht would run from its bootstrap peers; the table fills as answers come in.
			go func() { <-p.kad.RefreshRoutingTable() }()
			if p.cfg.autoMonitor {
				p.monitor.start(a)
			}
			p.events.emit("connect:done", map[string]any{"success": true, "bootstrap": a, "attempts": len(attempts)})
			return map[string]any{"success": true, "bootstrap": a, "attempts": attempts}
		}
		last = cat
		if ctx.Err() != nil {
			break
		}
	}
	done := map[string]any{"success": false, "attempts": len(attempts)}
	if last != nil {
		done["error"] = last
	}
	p.events.emit("connect:done", done)
	return map[string]any{"success": false, "attempts": attempts, "error": last}
}

// admissionConnections: fresh connections one connect may take when each is closed with no evidence of an
// admission decision. A bootstrap that refuses our agent closes every one; an idle-closing one only when it wins a
// race against our DHT stream (rust-libp2p 0.54 can close a connection at its very start): as for the js node
// (nodes/connect.ts), five in a row is a rejection, not bad luck.
const admissionConnections = 5

// connectOnce dials, then asks the bootstrap a FIND_NODE on the DHT protocol while watching whether it keeps the
// connection once it knows this node. A close that follows the bootstrap's identify of us while our DHT stream was
// already open is an admission refusal ("rejected"): an idle-closing bootstrap keeps a connection that carries a
// stream. Two such closes, or closes of every one of admissionConnections fresh connections, are a rejection.
func (p *peerNode) connectOnce(ctx context.Context, addr string, timeoutMs int) (string, *categorized) {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return "unknown", categorize("unknown", fmt.Sprintf("%s: not a multiaddr with /p2p/: %v", addr, err))
	}
	deadline := time.Now().Add(ms(timeoutMs))
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	rejections, closes, askedFirst := 0, 0, 0
	var lastClose string
	rejected := func() (string, *categorized) {
		var c *categorized
		if rejections >= 2 {
			c = categorize("rejected", lastClose+" (twice, on fresh connections)")
		} else {
			c = categorize("rejected", fmt.Sprintf("the bootstrap closed each of %d fresh connections before our DHT stream was open (%d of them after it asked who we are); an idle-closing bootstrap would keep one that carries a stream: agent rejected?", closes, askedFirst))
		}
		return c.Category, c
	}
	for rejections < 2 && closes < admissionConnections {
		attemptStart := time.Now()
		p.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		conn, err := p.h.Network().DialPeer(dialNow(ctx), ai.ID)
		if err != nil {
			if closes > 0 && ctx.Err() != nil {
				// Connections the bootstrap took and closed on us are what it did, even when the deadline then ran out
				// on the next one: a loaded client's retries must not turn "closed the connection" into "not responding".
				return rejected()
			}
			if closes > 0 && droppedInHandshake(err.Error()) {
				// A bootstrap that has been closing our connections drops the next one in its handshake (its close of
				// the earlier ones can reach a new one still upgrading): one more closed connection, not a new cause.
				closes++
				continue
			}
			c := categorizeDial(err, time.Now().After(deadline))
			return c.Category, c
		}
		conns := []network.Conn{conn}
		var closer []*peer.AddrInfo
		negotiated := false
		// The DHT stream is opened on the raw connection at once, before identify ends: a bootstrap that closes idle
		// connections (rust-libp2p's idle timeout 0) finds this one busy, and one that rejects our agent closes it
		// with the stream open.
		var s network.Stream
		var openedAt time.Time
		s, err = conn.NewStream(ctx)
		if err == nil {
			openedAt = time.Now()
			_ = s.SetDeadline(deadline)
			if err = msmux.SelectProtoOrFail(p.cfg.dhtProtocol, s); err == nil {
				negotiated = true
				_ = s.SetProtocol(protocol.ID(p.cfg.dhtProtocol))
				if closer, err = findNodeOn(s, p.h.ID()); err == nil {
					// Hold the stream until identify told the bootstrap who we are, plus a grace: an admission policy acts then.
					waitUntil(ctx, 2*time.Second, func() bool { return p.asks.since(ai.ID, attemptStart) })
					waitUntil(ctx, 500*time.Millisecond, func() bool { return closedAll(conns) })
				}
			}
		}
		if err != nil {
			// A failure on a connection the bootstrap is closing is the close, whatever error it surfaced as.
			waitUntil(ctx, 300*time.Millisecond, func() bool { return closedAll(conns) })
		}
		closed := closedAll(conns)
		if s != nil {
			_ = s.Close()
		}
		if err != nil && s != nil && strings.Contains(err.Error(), "protocols not supported") && !closed {
			c := categorize("protocol", fmt.Sprintf("the bootstrap does not serve %s: %v", p.cfg.dhtProtocol, err))
			return c.Category, c
		}
		if err == nil && !closed {
			p.mu.Lock()
			p.lastRead = nowMs()
			p.mu.Unlock()
			var agent any
			if v, err := p.h.Peerstore().Get(ai.ID, "AgentVersion"); err == nil {
				agent = v
			}
			p.events.emit("bootstrap:identified", map[string]any{"bootstrap": addr, "agentVersion": agent, "speaksDht": true, "otherPeers": nil, "closerPeers": len(closer)})
			return "success", nil
		}
		if closed {
			closes++
			asked := p.asks.since(ai.ID, attemptStart)
			if asked {
				askedFirst++
			}
			// Our stream was there before the bootstrap asked who we are (or it took our stream): an idle closer keeps
			// such a connection, so the close is a decision about us.
			if negotiated || (asked && !openedAt.IsZero() && !p.asks.since(ai.ID, openedAt)) {
				rejections++
				lastClose = "the bootstrap closed the connection after identify while our DHT stream was open: agent rejected?"
				if err != nil {
					lastClose += " (" + err.Error() + ")"
				}
			}
			if ctx.Err() != nil {
				return rejected()
			}
			continue
		}
		if ctx.Err() != nil {
			c := categorize("timeout", fmt.Sprintf("no DHT answer from the bootstrap within %d ms", timeoutMs))
			return c.Category, c
		}
		// Still connected: the bootstrap is there and does not answer our DHT protocol.
		if identified(p.h, ai.ID) {
			if ok, _ := p.h.Peerstore().SupportsProtocols(ai.ID, protocol.ID(p.cfg.dhtProtocol)); len(ok) == 0 {
				c := categorize("protocol", fmt.Sprintf("the bootstrap's identify lists no %s (%v)", p.cfg.dhtProtocol, err))
				return c.Category, c
			}
		}
		c := categorizeDial(err, false)
		if c.Category == "unknown" && s != nil && s.Protocol() != "" {
			c = categorize("protocol", "the bootstrap answered our DHT request with something that is not a DHT answer: "+err.Error())
		}
		return c.Category, c
	}
	return rejected()
}

// dialNow: a check dials the network as it is now. go-libp2p's swarm otherwise refuses, for up to minutes, to redial
// an address that failed ("dial backoff"), and a restarted bootstrap would stay red long after it is back.
func dialNow(ctx context.Context) context.Context {
	return network.WithForceDirectDial(ctx, "chiral-sim check")
}

// closedAll: every one of the connections is closed (the bootstrap dropped us).
func closedAll(conns []network.Conn) bool {
	for _, c := range conns {
		if !c.IsClosed() {
			return false
		}
	}
	return len(conns) > 0
}

func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) {
	end := time.Now().Add(limit)
	for !cond() && time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// findNodeOn sends one FIND_NODE for `key` on an open DHT stream and returns the peers of the answer.
func findNodeOn(s network.Stream, key peer.ID) ([]*peer.AddrInfo, error) {
	return askOn(s, pb.NewMessage(pb.Message_FIND_NODE, []byte(key), 0))
}

func askOn(s network.Stream, req *pb.Message) ([]*peer.AddrInfo, error) {
	res, err := exchange(s, req)
	if err != nil {
		return nil, err
	}
	if req.GetType() == pb.Message_GET_PROVIDERS {
		return pb.PBPeersToPeerInfos(res.GetProviderPeers()), nil
	}
	return pb.PBPeersToPeerInfos(res.GetCloserPeers()), nil
}

// exchange writes one length-prefixed DHT message and reads the answer.
func exchange(s network.Stream, req *pb.Message) (*pb.Message, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := msgio.NewVarintWriter(s).WriteMsg(b); err != nil {
		return nil, err
	}
	r := msgio.NewVarintReaderSize(bufio.NewReader(s), network.MessageSizeMax)
	raw, err := r.ReadMsg()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the stream ended without an answer")
		}
		return nil, err
	}
	defer r.ReleaseMsg(raw)
	var res pb.Message
	if err := proto.Unmarshal(raw, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ask opens a DHT stream to `to` (dialling if needed) and asks it one question.
func (p *peerNode) ask(ctx context.Context, to peer.ID, req *pb.Message) ([]*peer.AddrInfo, error) {
	s, err := p.dhtStream(ctx, to)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return askOn(s, req)
}

// dhtStream: a DHT stream to `to` (dialling if needed) that ends at ctx's deadline.
func (p *peerNode) dhtStream(ctx context.Context, to peer.ID) (network.Stream, error) {
	s, err := p.h.NewStream(ctx, to, protocol.ID(p.cfg.dhtProtocol))
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	return s, nil
}

type healthResult struct {
	Address               string  `json:"address"`
	IsReachable           bool    `json:"isReachable"`
	LatencyMs             *int64  `json:"latencyMs"`
	LastCheckTimestamp    int64   `json:"lastCheckTimestamp"`
	ErrorMessage          *string `json:"errorMessage"`
	PeerCountViaBootstrap int     `json:"peerCountViaBootstrap"`
}

// checkHealth pings the bootstrap within the ping deadline, on a fresh connection when it closed ours (an idle
// timeout is how such a bootstrap runs, not an outage). peerCountViaBootstrap: the other peers its FIND_NODE answer
// for our own ID names (the only count a non-chiral bootstrap gives; it is not who is online).
func (p *peerNode) checkHealth(ctx context.Context, addr string) healthResult {
	res := healthResult{Address: addr, LastCheckTimestamp: nowMs()}
	fail := func(msg string) healthResult { res.ErrorMessage = &msg; return res }
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fail("not a multiaddr with /p2p/: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, ms(p.t.HealthPingTimeoutMs))
	defer cancel()
	rtt, err := p.pingNow(ctx, *ai)
	if err != nil {
		if ctx.Err() != nil {
			return fail(fmt.Sprintf("no ping answer within %d ms", p.t.HealthPingTimeoutMs))
		}
		return fail("ping failed: " + err.Error())
	}
	lat := rtt.Milliseconds()
	res.LatencyMs = &lat
	res.IsReachable = true
	res.LastCheckTimestamp = nowMs()
	if closer, err := p.ask(ctx, ai.ID, pb.NewMessage(pb.Message_FIND_NODE, []byte(p.h.ID()), 0)); err == nil {
		for _, c := range closer {
			if c.ID != p.h.ID() && c.ID != ai.ID {
				res.PeerCountViaBootstrap++
			}
		}
	}
	return res
}

// pingNow: one libp2p ping (/ipfs/ping/1.0.0), on the open connection or a fresh one, with the streams opened on the
// raw connection at once. go-libp2p's own ping opens its stream only after identify, and a ping stream does not keep
// a rust-libp2p connection alive: a bootstrap that closes idle connections (idle timeout 0) closed every fresh
// connection before the ping was answered, and a restarted one stayed red.
func (p *peerNode) pingNow(ctx context.Context, ai peer.AddrInfo) (time.Duration, error) {
	var lastErr error
	lost := 0
	for ; lost < lostConnections && ctx.Err() == nil; lost++ {
		p.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		conn, err := p.h.Network().DialPeer(dialNow(ctx), ai.ID)
		if err != nil {
			c := categorizeDial(err, ctx.Err() != nil)
			return 0, fmt.Errorf("%s: %s", c.Category, c.Detail)
		}
		// A DHT stream held open keeps the connection alive through the ping: rust-libp2p counts every open stream
		// except ping's (its handler opts out), so a ping alone is cut off by an idle timeout of 0.
		if hold, err := conn.NewStream(ctx); err == nil {
			if msmux.SelectProtoOrFail(p.cfg.dhtProtocol, hold) == nil {
				defer hold.Close()
			} else {
				_ = hold.Reset()
			}
		}
		rtt, err := pingOn(ctx, conn)
		if err == nil {
			return rtt, nil
		}
		lastErr = err
		// The connection closed under the ping (an idle-closing node): once more on a fresh one.
		waitUntil(ctx, 300*time.Millisecond, conn.IsClosed)
		if !conn.IsClosed() {
			return 0, lastErr
		}
	}
	if lost == lostConnections {
		return 0, fmt.Errorf("the remote closed the connection before answering a ping, on %d fresh connections in a row (it closes connections right after identify?): %v", lostConnections, lastErr)
	}
	return 0, lastErr
}

// lostConnections: fresh connections a ping may take when each is closed under it, as for the js node
// (nodes/ping.ts): rust-libp2p 0.54 with idle timeout 0 can close a connection at its very start, before any stream
// of ours arrives, and more often on a loaded machine; five in a row is a bootstrap that closes every connection.
const lostConnections = 5

func pingOn(ctx context.Context, conn network.Conn) (time.Duration, error) {
	s, err := conn.NewStream(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if err := msmux.SelectProtoOrFail(ping.ID, s); err != nil {
		return 0, err
	}
	_ = s.SetProtocol(ping.ID)
	payload := make([]byte, ping.PingSize)
	if _, err := rand.Read(payload); err != nil {
		return 0, err
	}
	started := time.Now()
	if _, err := s.Write(payload); err != nil {
		return 0, err
	}
	echo := make([]byte, ping.PingSize)
	if _, err := io.ReadFull(s, echo); err != nil {
		return 0, err
	}
	if !bytes.Equal(echo, payload) {
		return 0, errors.New("the ping answer is not the payload sent")
	}
	return time.Since(started), nil
}

// testDiscovery: the plan's DHT read/write test, read back from other peers' answers (the node's own stores do not
// count). Two records, since no one kind is read back everywhere: a provider record (go-libp2p-kad-dht's Provide;
// rust-libp2p never returns a provider record to the provider itself) and a value record written with PUT_VALUE
// (go-libp2p-kad-dht refuses values outside its validators' namespaces; rust-libp2p stores any). Either one read
// back from another peer is a working read and write.
func (p *peerNode) testDiscovery(ctx context.Context, content string) map[string]any {
	r := p.testDiscoveryOnce(ctx, content)
	p.events.emit("dht:test", r)
	return r
}

func (p *peerNode) testDiscoveryOnce(ctx context.Context, content string) map[string]any {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, ms(p.t.DhtQueryTimeoutMs))
	defer cancel()
	lat := func() int64 { return time.Since(started).Milliseconds() }
	all, _ := p.routingPeers()
	if len(all) == 0 {
		p.query(false)
		return map[string]any{"success": false, "latencyMs": 0, "error": "the DHT routing table is empty: no peer to store the test record on"}
	}
	sum := sha256.Sum256([]byte(content + "/" + p.h.ID().String()))
	hash, _ := mh.Encode(sum[:], mh.SHA2_256)
	c := cid.NewCidV1(cid.Raw, hash)
	provideErr := p.kad.Provide(ctx, c, true)
	key := []byte("/chiral-test/" + content + "-" + p.h.ID().String())
	value := []byte(strconv.FormatInt(nowMs(), 10))
	put := pb.NewMessage(pb.Message_PUT_VALUE, key, 0)
	put.Record = &recpb.Record{Key: key, Value: value}
	stored := 0
	for _, id := range all {
		if _, err := p.ask(ctx, id, put); err == nil {
			stored++
		}
	}
	if provideErr != nil && stored == 0 {
		p.query(false)
		return map[string]any{"success": false, "latencyMs": lat(), "error": "DHT write failed: " + provideErr.Error()}
	}
	p.mu.Lock()
	p.lastWrite = nowMs()
	p.mu.Unlock()
	// ADD_PROVIDER has no answer: a peer may still be storing the record when it is asked, so ask again until the
	// query deadline.
	var lastErr error
	for ctx.Err() == nil {
		for _, id := range all {
			if p.readsBack(ctx, id, c, key, value, &lastErr) {
				p.query(true)
				p.mu.Lock()
				p.lastRead = nowMs()
				p.mu.Unlock()
				return map[string]any{"success": true, "latencyMs": lat()}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	p.query(false)
	why := fmt.Sprintf("DHT read failed: none of the %d routing-table peers returned our provider record or our value record (stored on %d)", len(all), stored)
	if lastErr != nil {
		why += " (last error: " + lastErr.Error() + ")"
	}
	return map[string]any{"success": false, "latencyMs": lat(), "error": why}
}

func (p *peerNode) readsBack(ctx context.Context, id peer.ID, c cid.Cid, key, value []byte, lastErr *error) bool {
	provs, err := p.ask(ctx, id, pb.NewMessage(pb.Message_GET_PROVIDERS, c.Hash(), 0))
	if err != nil {
		*lastErr = err
	}
	for _, ai := range provs {
		if ai.ID == p.h.ID() {
			return true
		}
	}
	rec, err := p.askRecord(ctx, id, key)
	if err != nil {
		*lastErr = err
		return false
	}
	return rec != nil && string(rec.GetValue()) == string(value)
}

// askRecord: one GET_VALUE to `to`, the record of its answer (nil when it has none).
func (p *peerNode) askRecord(ctx context.Context, to peer.ID, key []byte) (*recpb.Record, error) {
	s, err := p.dhtStream(ctx, to)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	res, err := exchange(s, pb.NewMessage(pb.Message_GET_VALUE, key, 0))
	if err != nil {
		return nil, err
	}
	return res.GetRecord(), nil
}

func (p *peerNode) verifyReachable(ctx context.Context, id peer.ID, fresh bool) map[string]any {
	ctx, cancel := context.WithTimeout(ctx, ms(p.t.PeerDialTimeoutMs))
	defer cancel()
	addrs := p.h.Peerstore().Addrs(id)
	if fresh && p.h.Network().Connectedness(id) == network.Connected {
		// go-libp2p reuses a connection; a fresh probe must test the path as it is now.
		_ = p.h.Network().ClosePeer(id)
	}
	if err := p.h.Connect(dialNow(ctx), peer.AddrInfo{ID: id, Addrs: addrs}); err != nil {
		c := categorizeDial(err, ctx.Err() != nil)
		p.mu.Lock()
		p.dialFailures = append(p.dialFailures, dialFailure{id.String(), c.Category, c.Detail, nowMs()})
		p.mu.Unlock()
		p.events.emit("dial:failed", map[string]any{"peerId": id.String(), "category": c.Category, "detail": c.Detail})
		out := map[string]any{"reachable": false, "error": c.Category + ": " + c.Detail}
		p.events.emit("peer:verified", map[string]any{"peerId": id.String(), "reachable": false, "error": out["error"]})
		return out
	}
	out := map[string]any{"reachable": true}
	if conns := p.h.Network().ConnsToPeer(id); len(conns) > 0 {
		out["address"] = conns[0].RemoteMultiaddr().String()
	}
	if r := <-ping.Ping(ctx, p.h, id); r.Error == nil {
		out["latencyMs"] = r.RTT.Milliseconds()
	}
	ev := map[string]any{"peerId": id.String()}
	for k, v := range out {
		ev[k] = v
	}
	p.events.emit("peer:verified", ev)
	return out
}

func (p *peerNode) findPeer(ctx context.Context, id, via peer.ID) map[string]any {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, ms(p.t.DhtQueryTimeoutMs))
	defer cancel()
	if via != "" {
		closer, err := p.ask(ctx, via, pb.NewMessage(pb.Message_FIND_NODE, []byte(id), 0))
		out := map[string]any{"found": false, "addresses": []string{}, "latencyMs": time.Since(started).Milliseconds()}
		if err != nil {
			out["error"] = err.Error()
			return out
		}
		names := []string{}
		for _, c := range closer {
			names = append(names, c.ID.String())
			if c.ID == id {
				out["found"] = true
			}
		}
		out["closerPeers"] = names
		return out
	}
	ai, err := p.kad.FindPeer(ctx, id)
	p.query(err == nil)
	out := map[string]any{"found": err == nil, "addresses": []string{}, "latencyMs": time.Since(started).Milliseconds()}
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	addrs := []string{}
	for _, a := range ai.Addrs {
		addrs = append(addrs, a.String())
	}
	out["addresses"] = addrs
	return out
}

// verifyDiscovery: the plan's six steps. fileDiscovery is skipped (this node shares no files: chiral's file
// transfer is not implemented here). A peer that finds nobody is `unknown`: only a chiral bootstrap says who else
// is online, and this node does not ask one.
func (p *peerNode) verifyDiscovery(ctx context.Context) map[string]any {
	p.mu.Lock()
	connectedAt := p.connectedAt
	p.mu.Unlock()
	if connectedAt != 0 {
		waitUntil(ctx, ms(p.t.DiscoveryVerificationDelayMs), func() bool { _, o := p.routingPeers(); return len(o) > 0 })
	}
	skipped := []string{}
	bootstrapConnected := false
	if addr := p.bootstrapAddress(); connectedAt != 0 && addr != "" {
		ai, _ := peer.AddrInfoFromString(addr)
		dctx, cancel := context.WithTimeout(ctx, ms(p.t.PeerDialTimeoutMs))
		bootstrapConnected = p.h.Connect(dialNow(dctx), *ai) == nil
		cancel()
	}
	all, others := p.routingPeers()
	routingTablePopulated := len(all) > 0
	p.mu.Lock()
	announced := p.rtAdds
	p.mu.Unlock()
	eventsWorking := routingTablePopulated && announced > 0
	test := p.testDiscovery(ctx, "discovery-test")
	dhtReadWrite := test["success"] == true
	peerDialing := false
	if len(others) == 0 {
		skipped = append(skipped, "peerDialing")
		peerDialing = true
	} else {
		reachable := 0
		for _, id := range others {
			if p.verifyReachable(ctx, id, false)["reachable"] == true {
				reachable++
			}
		}
		peerDialing = reachable == len(others)
	}
	skipped = append(skipped, "fileDiscovery")
	checks := map[string]bool{"bootstrapConnected": bootstrapConnected, "routingTablePopulated": routingTablePopulated, "eventsWorking": eventsWorking, "dhtReadWrite": dhtReadWrite, "peerDialing": peerDialing, "fileDiscovery": true}
	passed, applicable, failedNames := 0, 0, []string{}
	for _, name := range []string{"bootstrapConnected", "routingTablePopulated", "eventsWorking", "dhtReadWrite", "peerDialing", "fileDiscovery"} {
		if contains(skipped, name) {
			continue
		}
		applicable++
		if checks[name] {
			passed++
		} else {
			failedNames = append(failedNames, name)
		}
	}
	overall := "partial"
	if passed == applicable {
		overall = "verified"
	} else if passed == 0 || !bootstrapConnected {
		overall = "failed"
	}
	message := ""
	switch {
	case overall == "verified" && len(others) == 0:
		overall = "unknown"
		message = "⚠️ No peers found, and the bootstrap does not say whether anyone else is online - cannot tell \"you might be first\" from discovery failing"
	case overall == "verified":
		message = fmt.Sprintf("✅ Discovered %d peer%s - discovery verified", len(others), plural(len(others)))
	case overall == "partial":
		message = fmt.Sprintf("⚠️ Partial discovery - some features may not work (%s failed)", strings.Join(failedNames, ", "))
	default:
		message = "❌ Discovery broken - cannot find peers"
	}
	status := map[string]any{
		"bootstrapConnected": bootstrapConnected, "routingTablePopulated": routingTablePopulated, "eventsWorking": eventsWorking,
		"dhtReadWrite": dhtReadWrite, "peerDialing": peerDialing, "fileDiscovery": false, "overall": overall, "firstPeer": false,
		"routingTableSize": len(others), "discoveredPeers": ids(others), "skipped": skipped, "message": message,
	}
	p.events.emit("discovery:status", map[string]any{"status": status})
	return status
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// waitBidirectional: poll until each expected peer (or, with none named, any peer) is in the routing table and
// answers a dial.
func (p *peerNode) waitBidirectional(ctx context.Context, want []peer.ID, anyPeer bool, timeoutMs int) map[string]any {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, ms(timeoutMs))
	defer cancel()
	verified := []map[string]any{}
	done := map[peer.ID]bool{}
	poll := ms(p.t.DiscoveryPollIntervalMs)
	for {
		_, others := p.routingPeers()
		for _, id := range others {
			if done[id] || (!anyPeer && !containsID(want, id)) {
				continue
			}
			r := p.verifyReachable(ctx, id, false)
			if r["reachable"] == true {
				done[id] = true
				v := map[string]any{"peerId": id.String(), "afterMs": time.Since(started).Milliseconds()}
				if l, ok := r["latencyMs"]; ok {
					v["latencyMs"] = l
				}
				verified = append(verified, v)
			}
		}
		complete := (anyPeer && len(done) > 0) || (!anyPeer && len(done) == len(want))
		if complete || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
	missing := []string{}
	for _, id := range want {
		if !done[id] {
			missing = append(missing, id.String())
		}
	}
	success := len(missing) == 0 && (!anyPeer || len(done) > 0)
	return map[string]any{"success": success, "durationMs": time.Since(started).Milliseconds(), "verified": verified, "missing": missing}
}

func containsID(list []peer.ID, id peer.ID) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

func (p *peerNode) metrics() map[string]any {
	all, _ := p.routingPeers()
	p.mu.Lock()
	defer p.mu.Unlock()
	nullable := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	var rate any
	if p.queries > 0 {
		rate = float64(p.queriesOK) / float64(p.queries)
	}
	var walk any
	if p.firstWalkAt != 0 && p.connectedAt != 0 {
		walk = max(p.firstWalkAt-p.connectedAt, 0)
	}
	attempts := append([]attempt{}, p.attempts...)
	return map[string]any{
		"connectionAttempts": attempts, "lastConnectionError": p.lastError, "lastPeerDiscoveryTime": nullable(p.lastDiscoveryAt),
		"totalPeersDiscovered": len(p.discovered), "discoveryQueries": p.queries, "discoveryQueriesSucceeded": p.queriesOK,
		"discoverySuccessRate": rate, "kadRoutingTableSize": len(all), "lastSuccessfulDhtWrite": nullable(p.lastWrite),
		"lastSuccessfulDhtRead": nullable(p.lastRead), "bootstrapWalkDurationMs": walk,
	}
}
