package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
)

const usage = `usage: chiral-go-node [--host 127.0.0.1] [--port 0] [--seed TEXT]
  [--dht-protocol /ipfs/kad/1.0.0] [--kad-mode server|client|auto]
  [--idle-timeout SECONDS]            (absent: go-libp2p keeps idle connections; 0 closes them after identify)
  [--identify-protocol-version TEXT] [--agent-version TEXT]
  [--admit-agent-prefix TEXT]...      (disconnect a peer after identify unless its agent starts with one of them)
  [--routable-only]                   (only peers with public addresses enter the routing table)
  [--max-connections N] [--max-connections-per-peer N]
  [--bootstrap MULTIADDR]...          (dial these and run a DHT bootstrap: the node acts as a peer)
  [--exit-on-stdin-close]
  As a chiral-sim peer, serving the control channel (nodes/contract.schema.json) instead of dialling at start:
  --control-token-file PATH (or env CHIRAL_CONTROL_TOKEN_FILE) [--control-host 127.0.0.1] [--control-port 0]
  [--name NAME] [--timing JSON] (the plan's timing, real ms) [--no-auto-monitor]`

var errHelp = errors.New("help")

const defaultAgent = "chiral-interop-go/0.1.0 (go-libp2p v0.49.0)"

type config struct {
	host                    string
	port                    int
	seed                    string
	dhtProtocol             string
	kadMode                 dht.ModeOpt
	kadModeName             string
	idleTimeout             time.Duration // < 0: none
	identifyProtocolVersion string
	agentVersion            string
	admitAgentPrefixes      []string
	routableOnly            bool
	maxConnections          int
	maxConnectionsPerPeer   int
	bootstrap               []string
	exitOnStdinClose        bool
	controlTokenFile        string
	controlHost             string
	controlPort             int
	name                    string
	timingJSON              string
	autoMonitor             bool
	agentVersionSet         bool
}

// parseArgs takes the same flags as the rust node (one or two leading dashes), so a scenario swaps binaries only.
func parseArgs(argv []string) (config, error) {
	c := config{host: "127.0.0.1", dhtProtocol: "/ipfs/kad/1.0.0", kadMode: dht.ModeServer, kadModeName: "server",
		idleTimeout: -1, identifyProtocolVersion: "ipfs/0.1.0", agentVersion: defaultAgent,
		controlHost: "127.0.0.1", name: "go-peer", autoMonitor: true}
	for i := 0; i < len(argv); i++ {
		flag := "--" + strings.TrimLeft(argv[i], "-")
		value := func() (string, error) {
			if i+1 >= len(argv) {
				return "", fmt.Errorf("%s needs a value", flag)
			}
			i++
			return argv[i], nil
		}
		num := func() (int, error) {
			v, err := value()
			if err != nil {
				return 0, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%s %q: not a valid number", flag, v)
			}
			return n, nil
		}
		var err error
		switch flag {
		case "--host":
			c.host, err = value()
		case "--port":
			c.port, err = num()
		case "--seed":
			c.seed, err = value()
		case "--dht-protocol":
			c.dhtProtocol, err = value()
			if err == nil && !strings.HasPrefix(c.dhtProtocol, "/") {
				err = fmt.Errorf("--dht-protocol %q: a protocol name starts with \"/\", e.g. /ipfs/kad/1.0.0", c.dhtProtocol)
			}
		case "--kad-mode":
			c.kadModeName, err = value()
			modes := map[string]dht.ModeOpt{"server": dht.ModeServer, "client": dht.ModeClient, "auto": dht.ModeAuto}
			if m, ok := modes[c.kadModeName]; ok {
				c.kadMode = m
			} else if err == nil {
				err = fmt.Errorf("--kad-mode %q: use server, client or auto", c.kadModeName)
			}
		case "--idle-timeout":
			var v string
			v, err = value()
			secs, perr := strconv.ParseFloat(v, 64)
			if err == nil && (perr != nil || secs < 0 || secs > 86400) {
				err = fmt.Errorf("--idle-timeout %q: seconds between 0 and 86400, e.g. 0 or 10", v)
			}
			c.idleTimeout = time.Duration(secs * float64(time.Second))
		case "--identify-protocol-version":
			c.identifyProtocolVersion, err = value()
		case "--agent-version":
			c.agentVersion, err = value()
			c.agentVersionSet = true
		case "--admit-agent-prefix":
			var v string
			v, err = value()
			c.admitAgentPrefixes = append(c.admitAgentPrefixes, v)
		case "--routable-only":
			c.routableOnly = true
		case "--max-connections":
			c.maxConnections, err = num()
		case "--max-connections-per-peer":
			c.maxConnectionsPerPeer, err = num()
		case "--max-pending-incoming":
			err = errors.New("--max-pending-incoming: go-libp2p has no limit on pending incoming connections (rust-libp2p's connection-limits has); use --max-connections")
		case "--bootstrap":
			var v string
			v, err = value()
			c.bootstrap = append(c.bootstrap, v)
		case "--exit-on-stdin-close":
			c.exitOnStdinClose = true
		case "--control-token-file":
			c.controlTokenFile, err = value()
		case "--control-host":
			c.controlHost, err = value()
		case "--control-port":
			c.controlPort, err = num()
		case "--name":
			c.name, err = value()
		case "--timing":
			c.timingJSON, err = value()
		case "--no-auto-monitor":
			c.autoMonitor = false
		case "--help", "--h":
			return c, errHelp
		default:
			err = fmt.Errorf("unknown flag %q", argv[i])
		}
		if err != nil {
			return c, err
		}
	}
	if c.controlTokenFile == "" {
		c.controlTokenFile = os.Getenv("CHIRAL_CONTROL_TOKEN_FILE")
	}
	return c, nil
}

// summary states every knob on one line, printed at start so a run's record shows what the node under test did.
func (c config) summary() string {
	idle := "none(go-libp2p keeps idle connections)"
	if c.idleTimeout >= 0 {
		idle = c.idleTimeout.String()
	}
	limit := func(n int) string {
		if n == 0 {
			return "default"
		}
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("kad-mode=%s dht-protocol=%s idle-timeout=%s identify-protocol-version=%q agent-version=%q admit-agent-prefix=%q routable-only=%v max-connections=%s max-connections-per-peer=%s",
		c.kadModeName, c.dhtProtocol, idle, c.identifyProtocolVersion, c.agentVersion, c.admitAgentPrefixes, c.routableOnly, limit(c.maxConnections), limit(c.maxConnectionsPerPeer))
}
