package main

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
)

// identifyAsks remembers when each remote last asked who we are (opened an identify stream to us). An admission
// policy decides on our agent only once it has our answer, so a close after the ask may be a refusal of our agent,
// and one before it cannot be. Our own identify of the remote is no such evidence: on a loaded client the
// bootstrap can learn our agent and close the connection before our identify of it, or our DHT stream, gets through.
// go-libp2p has no event for an identify it answered; the resource manager sees every stream's protocol.
type identifyAsks struct {
	mu sync.Mutex
	at map[peer.ID]time.Time
}

func newIdentifyAsks() *identifyAsks { return &identifyAsks{at: map[peer.ID]time.Time{}} }

func (a *identifyAsks) asked(id peer.ID) {
	a.mu.Lock()
	a.at[id] = time.Now()
	a.mu.Unlock()
}

// since: `id` asked who we are at or after `t`.
func (a *identifyAsks) since(id peer.ID, t time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.at[id]
	return ok && !at.Before(t)
}

// askWatcher is the node's resource manager, unchanged but for noting inbound identify streams.
type askWatcher struct {
	network.ResourceManager
	asks *identifyAsks
}

func (w askWatcher) OpenStream(p peer.ID, dir network.Direction) (network.StreamManagementScope, error) {
	scope, err := w.ResourceManager.OpenStream(p, dir)
	if err != nil || dir != network.DirInbound {
		return scope, err
	}
	return inboundStreamScope{scope, p, w.asks}, nil
}

type inboundStreamScope struct {
	network.StreamManagementScope
	peer peer.ID
	asks *identifyAsks
}

// SetProtocol runs once the remote's protocol is negotiated, before its handler answers.
func (s inboundStreamScope) SetProtocol(proto protocol.ID) error {
	if proto == identify.ID {
		s.asks.asked(s.peer)
	}
	return s.StreamManagementScope.SetProtocol(proto)
}
