//! A command's request, decoded as strictly as the contract's zod schemas do (nodes/commands.ts): an object whose
//! unknown fields and wrong types are a bad-request naming the field; and the error a command answers with.

use serde_json::{Map, Value};

/// A command that could not be carried out; `code` is one of the contract's error codes.
#[derive(Debug)]
pub struct CmdError {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl CmdError {
    pub fn bad_request(field: &str, message: String) -> CmdError {
        CmdError { code: "bad-request", message, field: (!field.is_empty()).then(|| field.to_string()) }
    }
}

/// The contract's HTTP status for an error code (nodes/control/server.ts httpStatusOf).
pub fn http_status(code: &str) -> u16 {
    match code {
        "bad-request" => 400,
        "unauthorized" => 401,
        "forbidden" => 403,
        "unknown-command" => 404,
        "not-supported" => 409,
        "aborted" => 499,
        "unavailable" => 503,
        _ => 500,
    }
}

pub struct Req {
    command: &'static str,
    fields: Map<String, Value>,
}

impl Req {
    /// `body`: the raw request body (empty: no arguments). `allowed`: the request schema's fields.
    pub fn parse(command: &'static str, body: &[u8], allowed: &[&str]) -> Result<Req, CmdError> {
        let fields = if body.iter().all(|b| b.is_ascii_whitespace()) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(CmdError::bad_request("", format!("{command}: request: expected a JSON object"))),
                Err(_) => return Err(CmdError::bad_request("", "request body is not valid JSON".into())),
            }
        };
        if let Some(k) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            let known = if allowed.is_empty() { "it takes no fields".to_string() } else { format!("its fields are {}", allowed.join(", ")) };
            return Err(CmdError::bad_request(k, format!("{command}: field \"{k}\": unrecognized key ({known})")));
        }
        Ok(Req { command, fields })
    }

    fn wrong(&self, field: &str, expected: &str) -> CmdError {
        CmdError::bad_request(field, format!("{}: field \"{field}\": expected {expected}", self.command))
    }

    pub fn string(&self, field: &str) -> Result<Option<String>, CmdError> {
        match self.fields.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(field, "a string")),
        }
    }

    pub fn int(&self, field: &str) -> Result<Option<i64>, CmdError> {
        match self.fields.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(_) => Err(self.wrong(field, "an integer")),
        }
    }

    pub fn bool(&self, field: &str) -> Result<Option<bool>, CmdError> {
        match self.fields.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(field, "a boolean")),
        }
    }

    pub fn strings(&self, field: &str) -> Result<Option<Vec<String>>, CmdError> {
        match self.fields.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| self.wrong(&format!("{field}.{i}"), "a string")))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.wrong(field, "an array of strings")),
        }
    }

    pub fn peer_id(&self, field: &str) -> Result<Option<libp2p::PeerId>, CmdError> {
        self.string(field)?
            .map(|s| {
                s.parse().map_err(|_| CmdError::bad_request(field, format!("{}: field \"{field}\": not a peer ID; expected e.g. 12D3KooW…", self.command)))
            })
            .transpose()
    }

    pub fn multiaddr(&self, field: &str, s: &str) -> Result<libp2p::Multiaddr, CmdError> {
        let addr: libp2p::Multiaddr = s
            .parse()
            .map_err(|e| CmdError::bad_request(field, format!("{}: field \"{field}\": not a multiaddr ({e})", self.command)))?;
        match addr.iter().last() {
            Some(libp2p::multiaddr::Protocol::P2p(_)) => Ok(addr),
            _ => Err(CmdError::bad_request(field, format!("{}: field \"{field}\": the multiaddr must end in /p2p/<peer id>", self.command))),
        }
    }
}
