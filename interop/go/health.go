package main

// The plan's bootstrap health monitor (Solution #2): a check every healthCheckIntervalMs, the last
// healthHistorySize results, green < healthyLatencyMs ≤ yellow ≤ degradedLatencyMs, red when unreachable; a
// warning after highLatencyConsecutiveChecks slow checks in a row, an alert after unreachableAlertMs unreachable.

import (
	"context"
	"fmt"
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
	status  string
	alert   bool
	warning bool
}

func newMonitor(p *peerNode) *monitor { return &monitor{p: p, status: "unknown"} }

func (m *monitor) start(addr string) {
	m.mu.Lock()
	if m.cancel != nil {
		m.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.running, m.address = cancel, true, addr
	m.mu.Unlock()
	m.p.events.emit("monitor:started", map[string]any{"address": addr, "intervalMs": m.p.t.HealthCheckIntervalMs})
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
		m.p.events.emit("monitor:stopped", map[string]any{})
	}
	m.running = false
}

// record is nodes/health/monitor.ts's state transition for one check, with the same events.
func (m *monitor) record(r healthResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.p.t
	at := nowMs()
	m.history = append(m.history, r)
	if n := t.HealthHistorySize; n > 0 && len(m.history) > n {
		m.history = m.history[len(m.history)-n:]
	}
	from := m.status
	m.status = m.statusLocked()
	m.p.events.emit("health:check", map[string]any{"health": r, "status": m.status})
	if from != m.status {
		m.p.events.emit("health:status", map[string]any{"from": from, "to": m.status, "address": m.address})
	}
	if !r.IsReachable {
		m.slowRun = 0
		if m.downAt == 0 {
			m.downAt = at
		}
		down := at - m.downAt
		if !m.alert && down >= int64(t.UnreachableAlertMs) {
			m.alert = true
			m.p.events.emit("health:alert", map[string]any{"address": m.address, "unreachableForMs": down,
				"message": "Bootstrap unreachable - limited connectivity. Try refreshing the connection or wait for recovery"})
		}
		return
	}
	if from == "red" && m.downAt != 0 {
		m.p.events.emit("health:recovered", map[string]any{"address": m.address, "downtimeMs": at - m.downAt})
	}
	m.downAt = 0
	m.alert = false
	if r.LatencyMs != nil && *r.LatencyMs > int64(t.DegradedLatencyMs) {
		m.slowRun++
		if !m.warning && m.slowRun >= t.HighLatencyConsecutiveChecks {
			m.warning = true
			m.p.events.emit("health:warning", map[string]any{"address": m.address, "consecutive": m.slowRun, "latencyMs": *r.LatencyMs,
				"message": fmt.Sprintf("Bootstrap latency above %d ms on %d consecutive checks - network may be slow", t.DegradedLatencyMs, m.slowRun)})
		}
	} else {
		m.slowRun = 0
		m.warning = false
	}
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
		"warningActive": m.warning, "alertActive": m.alert,
	}
}
