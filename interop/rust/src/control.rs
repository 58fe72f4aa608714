//! The control channel chiral-sim drives its nodes through (nodes/contract.schema.json), served when the node runs
//! as a harness peer (--control-token-file): the same contract as nodes/control/server.ts and interop/go's
//! control.go. Loopback, a bearer token read from a 0600 file, no Origin header, a Host that is localhost or a
//! loopback/bound IP literal, JSON bodies; POST /commands/{name}, GET /events?from=N (NDJSON), GET /healthz.
//!
//! A small HTTP/1.1 server on tokio (Content-Length bodies, keep-alive, the event stream delimited by the close)
//! rather than hyper: the control channel needs nothing more, and a cold release build stays a minute shorter.

use crate::events::EventLog;
use crate::request::{http_status, CmdError};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_BODY: usize = 8 << 20;
const MAX_HEAD: usize = 64 << 10;

pub type CommandFuture = Pin<Box<dyn Future<Output = Result<Value, CmdError>> + Send>>;

/// What serves the commands: one future per call; dropped when the caller goes away.
pub trait Commands: Send + Sync + 'static {
    fn call(self: Arc<Self>, name: &str, body: Vec<u8>) -> CommandFuture;
}

pub struct Control<C: Commands> {
    pub name: String,
    pub token_hash: [u8; 32],
    pub bound_host: String,
    pub commands: Arc<C>,
    pub events: Arc<EventLog>,
}

/// Refuses a file others can read, as the js and go nodes do: a token behind a lax mode is no secret.
pub fn read_token_file(path: &str) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read control token file {path}: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("control token file {path} is accessible to group or others (mode {mode:03o}); run: chmod 600 {path}"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read control token file {path}: {e}"))?;
    let tok = text.trim();
    let ok_chars = tok.trim_end_matches('=').bytes().all(|b| b.is_ascii_alphanumeric() || b"._~+/-".contains(&b));
    if tok.len() < 32 || tok.len() > 1024 || !ok_chars {
        return Err(format!("control token file {path} does not hold a token: expected one line of at least 32 characters [A-Za-z0-9._~+/-]"));
    }
    Ok(tok.to_string())
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Listens and returns the URL the harness uses.
pub async fn serve<C: Commands>(control: Control<C>, host: &str, port: u16) -> Result<String, String> {
    let listener = TcpListener::bind((host, port)).await.map_err(|e| format!("control channel: cannot listen on {host}:{port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let control = Arc::new(control);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(connection(control.clone(), socket));
        }
    });
    let shown = if host == "0.0.0.0" || host.is_empty() { "127.0.0.1" } else { host };
    let shown = if shown.contains(':') { format!("[{shown}]") } else { shown.to_string() };
    Ok(format!("http://{shown}:{port}"))
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    keep_alive: bool,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

enum Read {
    Request(Request),
    /// A malformed request: answered with this status and the connection closed.
    Bad(u16, String),
    Closed,
}

async fn connection<C: Commands>(control: Arc<Control<C>>, mut socket: TcpStream) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let req = match tokio::time::timeout(Duration::from_secs(120), read_request(&mut socket, &mut buf)).await {
            Ok(Read::Request(r)) => r,
            Ok(Read::Bad(status, message)) => {
                let _ = respond(&mut socket, status, &error_body("bad-request", &message, None), false, &[]).await;
                return;
            }
            Ok(Read::Closed) | Err(_) => return,
        };
        let keep = req.keep_alive;
        if let Some(refused) = control.refuse(&req) {
            let status = if refused.field.as_deref() == Some("content-type") { 415 } else { http_status(refused.code) };
            let extra: &[(&str, &str)] = if refused.code == "unauthorized" { &[("WWW-Authenticate", "Bearer realm=\"chiral-control\"")] } else { &[] };
            let _ = respond(&mut socket, status, &error_body(refused.code, &refused.message, refused.field.as_deref()), false, extra).await;
            return;
        }
        let path = req.path.as_str();
        let (status, body) = if path == "/healthz" {
            match allow(&req, "GET") {
                Some(e) => e,
                None => (200, json!({ "ok": true, "name": control.name, "role": "peer" })),
            }
        } else if path == "/events" {
            if let Some((status, body)) = allow(&req, "GET") {
                (status, body)
            } else {
                stream_events(&control, &req, socket).await;
                return;
            }
        } else if let Some(name) = path.strip_prefix("/commands/") {
            match allow(&req, "POST") {
                Some(e) => e,
                None => {
                    let call = control.commands.clone().call(name, req.body);
                    // The caller going away ends the command (its future is dropped), as a closed request does in
                    // the js and go nodes.
                    let result = tokio::select! {
                        r = call => r,
                        _ = wait_closed(&mut socket, &mut buf) => return,
                    };
                    match result {
                        Ok(v) => (200, v),
                        Err(e) => (http_status(e.code), error_body(e.code, &e.message, e.field.as_deref())),
                    }
                }
            }
        } else {
            let msg = format!("no route {} {}; routes: POST /commands/:name, GET /events?from=N, GET /healthz", req.method, req.path);
            (404, error_body("bad-request", &msg, None))
        };
        let allow_header = if status == 405 { vec![("Allow", if path.starts_with("/commands/") { "POST" } else { "GET" })] } else { vec![] };
        if respond(&mut socket, status, &body, keep, &allow_header).await.is_err() || !keep {
            return;
        }
    }
}

fn allow(req: &Request, method: &str) -> Option<(u16, Value)> {
    (req.method != method).then(|| (405, error_body("bad-request", &format!("{} is not allowed here; use {method}", req.method), None)))
}

impl<C: Commands> Control<C> {
    fn refuse(&self, req: &Request) -> Option<CmdError> {
        let origin = format!("{}{}", req.header("origin").unwrap_or(""), req.header("sec-fetch-site").unwrap_or(""));
        if !origin.is_empty() {
            let shown: String = origin.chars().take(100).collect();
            return Some(CmdError { code: "forbidden", message: format!("requests from web pages are refused (Origin/Sec-Fetch-Site: {shown})"), field: None });
        }
        let host = req.header("host").unwrap_or("");
        if !host_allowed(host, &self.bound_host) {
            return Some(CmdError { code: "forbidden", message: format!("Host {host:?} is refused: use localhost or the IP address the node listens on"), field: None });
        }
        let auth = req.header("authorization").unwrap_or("").trim();
        let got = if auth.len() > 7 && auth[..7].eq_ignore_ascii_case("bearer ") { auth[7..].trim() } else { "" };
        // Compared as hashes: equal length, and no early exit that times the token.
        let sum = hash(got);
        let same = sum.iter().zip(self.token_hash.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if got.is_empty() || !same {
            return Some(CmdError {
                code: "unauthorized",
                message: "missing or wrong control token: send \"Authorization: Bearer <token>\" with the token from the file given to the node as --control-token-file".into(),
                field: None,
            });
        }
        let ct = req.header("content-type").unwrap_or("");
        let is_json = ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json");
        if !req.body.is_empty() && !is_json {
            return Some(CmdError { code: "bad-request", message: format!("request bodies must be Content-Type: application/json, got {ct:?}"), field: Some("content-type".into()) });
        }
        None
    }
}

/// The only name is localhost (a name is what DNS rebinding needs); an IP literal must be loopback or the bound one.
fn host_allowed(header: &str, bound: &str) -> bool {
    let h = if let Some(rest) = header.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        header.rsplit_once(':').map_or(header, |(h, _)| h)
    };
    let h = h.to_ascii_lowercase();
    if h == "localhost" {
        return true;
    }
    let Ok(ip) = h.parse::<IpAddr>() else { return false };
    if ip.is_loopback() {
        return true;
    }
    let b = bound.trim_matches(|c| c == '[' || c == ']');
    b == "0.0.0.0" || b == "::" || b.is_empty() || b.parse::<IpAddr>().map_or(false, |bip| bip == ip)
}

fn error_body(code: &str, message: &str, field: Option<&str>) -> Value {
    let mut e = json!({ "code": code, "message": message });
    if let Some(f) = field {
        e["field"] = json!(f);
    }
    json!({ "error": e })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

async fn respond(socket: &mut TcpStream, status: u16, body: &Value, keep: bool, extra: &[(&str, &str)]) -> std::io::Result<()> {
    let b = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: {}\r\n",
        reason(status),
        b.len(),
        if keep { "keep-alive" } else { "close" }
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&b);
    socket.write_all(&out).await?;
    socket.flush().await
}

/// Reads one request (head and Content-Length body); `buf` carries bytes already read past the previous one.
async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Read {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Read::Bad(431, "request head exceeds 64 KiB".into());
        }
        let mut chunk = [0u8; 8192];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return Read::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = (first.next().unwrap_or(""), first.next().unwrap_or(""), first.next().unwrap_or(""));
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Read::Bad(400, "malformed request line".into());
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { return Read::Bad(400, "malformed header line".into()) };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if get("transfer-encoding").is_some() {
        return Read::Bad(400, "chunked request bodies are not accepted: send Content-Length".into());
    }
    let len: usize = match get("content-length") {
        None => 0,
        Some(v) => match v.parse() {
            Ok(n) => n,
            Err(_) => return Read::Bad(400, format!("Content-Length {v:?} is not a number")),
        },
    };
    if len > MAX_BODY {
        return Read::Bad(413, format!("request body exceeds the {MAX_BODY}-byte limit"));
    }
    while buf.len() < len {
        let mut chunk = vec![0u8; (len - buf.len()).min(1 << 16)];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return Read::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    let connection = get("connection").unwrap_or_default().to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.0" { connection == "keep-alive" } else { connection != "close" };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Read::Request(Request { method: method.into(), path: path.into(), query: query.into(), headers, keep_alive, body })
}

/// Resolves when the client closes its side (bytes it sends meanwhile are kept for the next request).
async fn wait_closed(socket: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    loop {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn stream_events<C: Commands>(control: &Control<C>, req: &Request, mut socket: TcpStream) {
    let raw = req.query.split('&').find_map(|kv| kv.strip_prefix("from=")).unwrap_or("0");
    let Ok(mut from) = raw.parse::<usize>() else {
        let body = error_body("bad-request", &format!("query \"from\" must be a non-negative integer, got {raw:?}"), Some("from"));
        let _ = respond(&mut socket, 400, &body, false, &[]).await;
        return;
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-store\r\nX-Chiral-First-Seq: {}\r\nX-Chiral-Retention: {}\r\nConnection: close\r\n\r\n",
        control.events.first(),
        control.events.retention()
    );
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = socket.into_split();
    let mut wake = control.events.subscribe();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
    heartbeat.tick().await;
    let mut sink = [0u8; 256];
    loop {
        wake.borrow_and_update();
        let (lines, next) = control.events.from(from);
        from = next;
        let mut out = Vec::new();
        for l in lines {
            out.extend_from_slice(&serde_json::to_vec(&l).unwrap_or_default());
            out.push(b'\n');
        }
        if !out.is_empty() && writer.write_all(&out).await.is_err() {
            return;
        }
        tokio::select! {
            r = wake.changed() => if r.is_err() { return },
            _ = heartbeat.tick() => if writer.write_all(b"{}\n").await.is_err() { return },
            r = reader.read(&mut sink) => if matches!(r, Ok(0) | Err(_)) { return },
        }
    }
}
