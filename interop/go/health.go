package main

// The plan's bootstrap health monitor (Solution #2): a check every healthCheckIntervalMs, the last
// healthHistorySize results, green < healthyLatencyMs ≤ yellow ≤ degradedLatencyMs, red when unreachable; a
// warning after highLatencyConsecutiveChecks slow checks in a row, an alert after unreachableAlertMs unreachable.

import (
	"context"
	"sync"
	"time"
)

type monitor struct {
	p       *peerNode
	mu      sync.Mutex
	running bool
	address string
	history []healthResult
	cancel  context.CancelFunc
	slowRun int
	downAt  int64
}

func newMonitor(p *peerNode) *monitor { return &monitor{p: p} }

func (m *monitor) start(addr string) {
	m.mu.Lock()
	if m.cancel != nil {
		m.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.running, m.address = cancel, true, addr
	m.mu.Unlock()
	go func() {
		for {
			r := m.p.checkHealth(ctx, addr)
			if ctx.Err() != nil {
				return
			}
			m.record(r)
			select {
			case <-ctx.Done():
				return
			case <-time.After(ms(m.p.t.HealthCheckIntervalMs)):
			}
		}
	}()
}

func (m *monitor) halt() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	m.running = false
}

func (m *monitor) record(r healthResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.history = append(m.history, r)
	if n := m.p.t.HealthHistorySize; n > 0 && len(m.history) > n {
		m.history = m.history[len(m.history)-n:]
	}
	switch {
	case !r.IsReachable:
		if m.downAt == 0 {
			m.downAt = r.LastCheckTimestamp
		}
	default:
		m.downAt = 0
	}
	if r.IsReachable && r.LatencyMs != nil && *r.LatencyMs > int64(m.p.t.DegradedLatencyMs) {
		m.slowRun++
	} else {
		m.slowRun = 0
	}
	m.p.events.emit("health:check", map[string]any{"health": r, "status": m.statusLocked()})
}

func (m *monitor) statusLocked() string {
	if len(m.history) == 0 {
		return "unknown"
	}
	last := m.history[len(m.history)-1]
	switch {
	case !last.IsReachable:
		return "red"
	case *last.LatencyMs < int64(m.p.t.HealthyLatencyMs):
		return "green"
	default:
		return "yellow"
	}
}

func (m *monitor) state() map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var uptime any
	window := nowMs() - int64(m.p.t.UptimeWindowMs)
	ok, n := 0, 0
	for _, h := range m.history {
		if h.LastCheckTimestamp >= window {
			n++
			if h.IsReachable {
				ok++
			}
		}
	}
	if n > 0 {
		uptime = float64(ok) * 100 / float64(n)
	}
	var address, since any
	if m.address != "" {
		address = m.address
	}
	if m.downAt != 0 {
		since = m.downAt
	}
	history := append([]healthResult{}, m.history...)
	return map[string]any{
		"running": m.running, "status": m.statusLocked(), "address": address, "history": history, "uptimePercent": uptime,
		"consecutiveHighLatency": m.slowRun, "unreachableSince": since,
		"warningActive": m.slowRun >= m.p.t.HighLatencyConsecutiveChecks,
		"alertActive":   m.downAt != 0 && nowMs()-m.downAt >= int64(m.p.t.UnreachableAlertMs),
	}
}
