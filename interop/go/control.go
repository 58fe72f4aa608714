package main

// The control channel chiral-sim drives its own nodes through (nodes/contract.schema.json), served by this go-libp2p
// node when it is started as a harness peer (--control-token-file). Same contract as nodes/control/server.ts:
// loopback, a bearer token read from a 0600 file, no Origin header, Host must be localhost or an IP literal that is
// loopback or the bound address, JSON bodies; POST /commands/{name}, GET /events?from=N (NDJSON), GET /healthz.

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
)

// httpStatus is the contract's httpStatus table (nodes/control/server.ts httpStatusOf).
var httpStatus = map[string]int{
	"bad-request": 400, "unauthorized": 401, "forbidden": 403, "unknown-command": 404,
	"not-supported": 409, "aborted": 499, "unavailable": 503, "failed": 500,
}

// cmdError is a command that could not be carried out; `code` is one of the contract's error codes.
type cmdError struct {
	code, message, field string
}

func (e *cmdError) Error() string { return e.message }

func badRequest(field, format string, args ...any) *cmdError {
	return &cmdError{code: "bad-request", message: fmt.Sprintf(format, args...), field: field}
}

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// readTokenFile refuses a file others can read, as the js nodes do: a token behind a lax mode is no secret.
func readTokenFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read control token file %s: %v", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("control token file %s is accessible to group or others (mode %03o); run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read control token file %s: %v", path, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 32 || len(tok) > 1024 || !tokenPattern.MatchString(tok) {
		return "", fmt.Errorf("control token file %s does not hold a token: expected one line of at least 32 characters [A-Za-z0-9._~+/-]", path)
	}
	return tok, nil
}

// handlerFunc answers one command: the raw request body (nil: no arguments) to a response value.
type handlerFunc func(req json.RawMessage, done <-chan struct{}) (any, error)

type controlServer struct {
	name, role string
	token      [32]byte
	boundHost  string
	commands   map[string]handlerFunc
	known      []string // every command of the contract, for unknown-command answers
	events     *eventLog
}

func (s *controlServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if refused := s.refuse(r); refused != nil {
		w.Header().Set("Connection", "close")
		if refused.code == "unauthorized" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chiral-control"`)
		}
		status := httpStatus[refused.code]
		if refused.field == "content-type" {
			status = 415
		}
		sendError(w, refused, status)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/healthz":
		if allow(w, r, "GET") {
			sendJSON(w, 200, map[string]any{"ok": true, "name": s.name, "role": s.role})
		}
	case path == "/events":
		if allow(w, r, "GET") {
			s.streamEvents(w, r)
		}
	case strings.HasPrefix(path, "/commands/"):
		if allow(w, r, "POST") {
			s.runCommand(w, r, strings.TrimPrefix(path, "/commands/"))
		}
	default:
		sendError(w, badRequest("", "no route %s %s; routes: POST /commands/:name, GET /events?from=N, GET /healthz", r.Method, path), 404)
	}
}

func (s *controlServer) refuse(r *http.Request) *cmdError {
	if o := r.Header.Get("Origin") + r.Header.Get("Sec-Fetch-Site"); o != "" {
		return &cmdError{code: "forbidden", message: fmt.Sprintf("requests from web pages are refused (Origin/Sec-Fetch-Site: %.100s)", o)}
	}
	if !hostAllowed(r.Host, s.boundHost) {
		return &cmdError{code: "forbidden", message: fmt.Sprintf("Host %q is refused: use localhost or the IP address the node listens on", r.Host)}
	}
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	got := ""
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		got = strings.TrimSpace(auth[7:])
	}
	sum := sha256.Sum256([]byte(got))
	if got == "" || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
		return &cmdError{code: "unauthorized", message: `missing or wrong control token: send "Authorization: Bearer <token>" with the token from the file given to the node as --control-token-file`}
	}
	if (r.ContentLength > 0 || len(r.TransferEncoding) > 0) && !isJSON(r.Header.Get("Content-Type")) {
		return &cmdError{code: "bad-request", field: "content-type", message: fmt.Sprintf("request bodies must be Content-Type: application/json, got %q", r.Header.Get("Content-Type"))}
	}
	return nil
}

func isJSON(ct string) bool {
	return strings.EqualFold(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]), "application/json")
}

// hostAllowed: the only name is localhost (a name is what DNS rebinding needs); an IP literal must be loopback or
// the bound address.
func hostAllowed(hostHeader, bound string) bool {
	h := hostHeader
	if hh, _, err := net.SplitHostPort(hostHeader); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.Trim(h, "[]"))
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	b := strings.Trim(bound, "[]")
	return b == "0.0.0.0" || b == "::" || b == "" || net.ParseIP(b).Equal(ip)
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	sendError(w, badRequest("", "%s is not allowed here; use %s", r.Method, method), 405)
	return false
}

const maxBody = 8 << 20

func (s *controlServer) runCommand(w http.ResponseWriter, r *http.Request, name string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		sendError(w, &cmdError{code: "aborted", message: "request body was cut off: " + err.Error()}, 499)
		return
	}
	if len(body) > maxBody {
		sendError(w, badRequest("", "request body exceeds the %d-byte limit", maxBody), 413)
		return
	}
	h, ok := s.commands[name]
	if !ok {
		if contains(s.known, name) {
			sendError(w, &cmdError{code: "not-supported", message: notImplemented(name)}, 0)
		} else {
			sendError(w, &cmdError{code: "unknown-command", message: fmt.Sprintf("unknown command %q; known commands: %s", name, strings.Join(s.known, ", "))}, 0)
		}
		return
	}
	var raw json.RawMessage
	if strings.TrimSpace(string(body)) != "" {
		if !json.Valid(body) {
			sendError(w, badRequest("", "request body is not valid JSON"), 0)
			return
		}
		raw = body
	}
	res, err := h(raw, r.Context().Done())
	if err != nil {
		var ce *cmdError
		if !errors.As(err, &ce) {
			ce = &cmdError{code: "failed", message: err.Error()}
		}
		sendError(w, ce, 0)
		return
	}
	sendJSON(w, 200, res)
}

// notImplemented is the answer for a command of the contract this node does not serve: the runner names the check
// it could not make from it.
func notImplemented(name string) string {
	why := notImplementedWhy[name]
	if why == "" {
		why = "not implemented by this reference node"
	}
	return fmt.Sprintf("command %q is not implemented by chiral-go-node (go-libp2p): %s", name, why)
}

var notImplementedWhy = map[string]string{
	"shareFile":    "file transfer is chiral-sim's own protocol, which a go-libp2p node does not speak",
	"downloadFile": "file transfer is chiral-sim's own protocol, which a go-libp2p node does not speak",
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sendError(w http.ResponseWriter, e *cmdError, status int) {
	if status == 0 {
		status = httpStatus[e.code]
	}
	body := map[string]any{"code": e.code, "message": e.message}
	if e.field != "" {
		body["field"] = e.field
	}
	sendJSON(w, status, map[string]any{"error": body})
}

func sendJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = 500
		b, _ = json.Marshal(map[string]any{"error": map[string]any{"code": "failed", "message": "node bug: response is not serialisable: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ---------------------------------------------------------------------------------------------------- events

// eventLog keeps the node's events (the contract's event schema: seq, time, node, type, …) in a bounded ring.
type eventLog struct {
	mu        sync.Mutex
	node      string
	retention int
	ring      []map[string]any
	next      int
	wake      chan struct{}
}

func newEventLog(node string, retention int) *eventLog {
	return &eventLog{node: node, retention: retention, ring: make([]map[string]any, retention), wake: make(chan struct{})}
}

func (l *eventLog) emit(typ string, fields map[string]any) {
	l.mu.Lock()
	ev := map[string]any{"seq": l.next, "time": time.Now().UnixMilli(), "node": l.node, "type": typ}
	for k, v := range fields {
		ev[k] = v
	}
	l.ring[l.next%l.retention] = ev
	l.next++
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

func (l *eventLog) first() int {
	if l.next > l.retention {
		return l.next - l.retention
	}
	return 0
}

// from returns the events with seq >= from (and the gap, if some were dropped), and a channel closed on the next emit.
func (l *eventLog) from(from int) (lines []any, next int, wake <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from < l.first() {
		lines = append(lines, map[string]any{"gap": map[string]any{"from": from, "to": l.first(), "retention": l.retention}})
		from = l.first()
	}
	for ; from < l.next; from++ {
		lines = append(lines, l.ring[from%l.retention])
	}
	return lines, from, l.wake
}

func (s *controlServer) streamEvents(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("from")
	if raw == "" {
		raw = "0"
	}
	from, err := strconv.Atoi(raw)
	if err != nil || from < 0 {
		sendError(w, badRequest("from", "query \"from\" must be a non-negative integer, got %q", raw), 0)
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Chiral-First-Seq", strconv.Itoa(s.events.first()))
	w.Header().Set("X-Chiral-Retention", strconv.Itoa(s.events.retention))
	w.WriteHeader(200)
	if fl != nil {
		fl.Flush()
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	enc := json.NewEncoder(w)
	for {
		lines, next, wake := s.events.from(from)
		from = next
		for _, l := range lines {
			if enc.Encode(l) != nil {
				return
			}
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-heartbeat.C:
			if _, err := io.WriteString(w, "{}\n"); err != nil {
				return
			}
		}
	}
}

// contractCommands: every command of the contract (nodes/commands.ts), so an unimplemented one is told apart from
// a misspelt one.
var contractCommands = []string{"info", "inspect", "connectWithTimeout", "checkBootstrapHealth", "startHealthMonitoring",
	"stopHealthMonitoring", "getHealth", "getDhtRoutingTableSize", "refreshRoutingTable", "testPeerDiscovery",
	"listDiscoveredPeerIds", "verifyPeerReachable", "findPeer", "getProviderRecords", "provide", "shareFile", "downloadFile",
	"verifyPeerDiscovery", "waitForBidirectionalDiscovery", "getMetrics", "shutdown"}

func newControl(cfg config, h host.Host, kad *dht.IpfsDHT, asks *identifyAsks, stop chan<- string) (*peerNode, *controlServer, error) {
	token, err := readTokenFile(cfg.controlTokenFile)
	if err != nil {
		return nil, nil, err
	}
	t := defaultTiming()
	if cfg.timingJSON != "" {
		// Unknown fields are ignored: the harness sends its whole timing object, of which this node uses a part.
		if err := json.Unmarshal([]byte(cfg.timingJSON), &t); err != nil {
			return nil, nil, fmt.Errorf("--timing: not a JSON timing object: %v", err)
		}
	}
	events := newEventLog(cfg.name, 10_000)
	p := newPeerNode(cfg.name, cfg, t, h, kad, asks, events, stop)
	return p, &controlServer{name: cfg.name, role: "peer", token: sha256.Sum256([]byte(token)), boundHost: cfg.controlHost,
		commands: p.commands(), known: contractCommands, events: events}, nil
}

// serveControl listens (loopback unless told otherwise) and returns the URL the harness uses.
func serveControl(cfg config, s *controlServer) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.controlHost, strconv.Itoa(cfg.controlPort)))
	if err != nil {
		return "", fmt.Errorf("control channel: %v", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	host := cfg.controlHost
	if host == "0.0.0.0" || host == "" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), nil
}
