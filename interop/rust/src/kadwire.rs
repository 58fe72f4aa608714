//! The Kademlia wire messages a harness peer sends on a raw DHT stream (libp2p's dht.proto), encoded by hand: the
//! connect admission check, the health check's FIND_NODE and the DHT read/write test ask one named peer one
//! question, which rust-libp2p's Kademlia behaviour (queries over the whole DHT) cannot do.

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;

pub const PUT_VALUE: u64 = 0;
pub const GET_VALUE: u64 = 1;
pub const ADD_PROVIDER: u64 = 2;
pub const GET_PROVIDERS: u64 = 3;
pub const FIND_NODE: u64 = 4;

/// The largest answer read (rust-libp2p's own limit is 16 KiB per message; kad-dht's 4 MiB).
const MAX_MESSAGE: usize = 4 << 20;

#[derive(Debug, Default, Clone)]
pub struct Peer {
    pub id: Vec<u8>,
    pub addrs: Vec<Vec<u8>>,
}

impl Peer {
    pub fn peer_id(&self) -> Option<PeerId> {
        PeerId::from_bytes(&self.id).ok()
    }
}

#[derive(Debug, Default, Clone)]
pub struct Message {
    pub kind: u64,
    pub key: Vec<u8>,
    /// PUT_VALUE / GET_VALUE: the record's key and value.
    pub record: Option<(Vec<u8>, Vec<u8>)>,
    pub closer: Vec<Peer>,
    pub providers: Vec<Peer>,
}

impl Message {
    pub fn new(kind: u64, key: Vec<u8>) -> Message {
        Message { kind, key, ..Default::default() }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // The type is written even when 0 (PUT_VALUE): proto2 decoders (rust-libp2p's) require it.
        tag(&mut out, 1, 0);
        varint(&mut out, self.kind);
        bytes_field(&mut out, 2, &self.key);
        if let Some((k, v)) = &self.record {
            let mut r = Vec::new();
            bytes_field(&mut r, 1, k);
            bytes_field(&mut r, 2, v);
            bytes_field(&mut out, 3, &r);
        }
        for (field, peers) in [(8, &self.closer), (9, &self.providers)] {
            for p in peers {
                let mut b = Vec::new();
                bytes_field(&mut b, 1, &p.id);
                for a in &p.addrs {
                    bytes_field(&mut b, 2, a);
                }
                bytes_field(&mut out, field, &b);
            }
        }
        tag(&mut out, 10, 0);
        varint(&mut out, 0);
        out
    }

    pub fn decode(mut buf: &[u8]) -> Result<Message, String> {
        let mut m = Message::default();
        while !buf.is_empty() {
            let (field, value) = next_field(&mut buf)?;
            match (field, value) {
                (1, Value::Varint(v)) => m.kind = v,
                (2, Value::Bytes(b)) => m.key = b.to_vec(),
                (3, Value::Bytes(b)) => m.record = Some(decode_record(b)?),
                (8, Value::Bytes(b)) => m.closer.push(decode_peer(b)?),
                (9, Value::Bytes(b)) => m.providers.push(decode_peer(b)?),
                _ => {}
            }
        }
        Ok(m)
    }
}

fn decode_peer(mut buf: &[u8]) -> Result<Peer, String> {
    let mut p = Peer::default();
    while !buf.is_empty() {
        match next_field(&mut buf)? {
            (1, Value::Bytes(b)) => p.id = b.to_vec(),
            (2, Value::Bytes(b)) => p.addrs.push(b.to_vec()),
            _ => {}
        }
    }
    Ok(p)
}

fn decode_record(mut buf: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (mut k, mut v) = (vec![], vec![]);
    while !buf.is_empty() {
        match next_field(&mut buf)? {
            (1, Value::Bytes(b)) => k = b.to_vec(),
            (2, Value::Bytes(b)) => v = b.to_vec(),
            _ => {}
        }
    }
    Ok((k, v))
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn next_field<'a>(buf: &mut &'a [u8]) -> Result<(u64, Value<'a>), String> {
    let key = read_varint(buf)?;
    let value = match key & 7 {
        0 => Value::Varint(read_varint(buf)?),
        1 | 5 => {
            let n = if key & 7 == 1 { 8 } else { 4 };
            if buf.len() < n {
                return Err("truncated protobuf field".into());
            }
            *buf = &buf[n..];
            Value::Fixed
        }
        2 => {
            let n = read_varint(buf)? as usize;
            if buf.len() < n {
                return Err("truncated protobuf field".into());
            }
            let (b, rest) = buf.split_at(n);
            *buf = rest;
            Value::Bytes(b)
        }
        w => return Err(format!("protobuf wire type {w} is not one a DHT message uses")),
    };
    Ok((key >> 3, value))
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..10 {
        let Some((&b, rest)) = buf.split_first() else { return Err("truncated varint".into()) };
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    tag(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Writes one length-prefixed message.
pub async fn send<S: futures::AsyncWrite + Unpin>(s: &mut S, m: &Message) -> std::io::Result<()> {
    let body = m.encode();
    let mut frame = Vec::with_capacity(body.len() + 5);
    varint(&mut frame, body.len() as u64);
    frame.extend_from_slice(&body);
    s.write_all(&frame).await?;
    s.flush().await
}

/// Reads one length-prefixed message; an end of stream before it is said so.
pub async fn receive<S: futures::AsyncRead + Unpin>(s: &mut S) -> Result<Message, String> {
    let mut len = 0usize;
    for i in 0..5 {
        let mut b = [0u8; 1];
        match s.read(&mut b).await {
            Ok(0) => return Err("the stream ended without an answer".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        len |= usize::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    if len > MAX_MESSAGE {
        return Err(format!("a DHT answer of {len} bytes exceeds the {MAX_MESSAGE}-byte limit"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof { "the stream ended in the middle of an answer".to_string() } else { e.to_string() }
    })?;
    Message::decode(&body)
}

/// One question, one answer.
pub async fn exchange<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(s: &mut S, m: &Message) -> Result<Message, String> {
    send(s, m).await.map_err(|e| e.to_string())?;
    receive(s).await
}

/// The multihash bytes of a CID (the DHT key of its provider records): CIDv0 (base58btc "Qm…") or CIDv1 in base32
/// ("b…"), the forms chiral-sim and the contract use.
pub fn cid_multihash(cid: &str) -> Option<Vec<u8>> {
    if cid.starts_with("Qm") && cid.len() == 46 {
        return bs58::decode(cid).into_vec().ok().filter(|b| b.len() == 34);
    }
    let raw = base32_decode(cid.strip_prefix('b')?)?;
    let mut buf = raw.as_slice();
    if read_varint(&mut buf).ok()? != 1 {
        return None;
    }
    read_varint(&mut buf).ok()?; // codec
    let before = buf;
    read_varint(&mut buf).ok()?; // hash function
    let len = read_varint(&mut buf).ok()? as usize;
    if buf.len() != len {
        return None;
    }
    Some(before.to_vec())
}

/// CIDv1 (raw codec, base32) of a sha2-256 digest: how a test record's key is named.
pub fn sha256_cid_multihash(digest: &[u8]) -> Vec<u8> {
    let mut mh = vec![0x12, 0x20];
    mh.extend_from_slice(digest);
    mh
}

fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_find_node_answer() {
        let mut m = Message::new(FIND_NODE, vec![1, 2, 3]);
        m.closer.push(Peer { id: vec![9; 34], addrs: vec![vec![4, 127, 0, 0, 1]] });
        m.record = Some((b"k".to_vec(), b"v".to_vec()));
        let d = Message::decode(&m.encode()).unwrap();
        assert_eq!(d.kind, FIND_NODE);
        assert_eq!(d.key, vec![1, 2, 3]);
        assert_eq!(d.closer[0].id, vec![9; 34]);
        assert_eq!(d.record, Some((b"k".to_vec(), b"v".to_vec())));
    }

    #[test]
    fn reads_cids() {
        // The CIDv1 (raw) and CIDv0 of the same sha2-256 multihash.
        let v1 = cid_multihash("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku").unwrap();
        assert_eq!(&v1[..2], &[0x12, 0x20]);
        assert!(cid_multihash("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").is_some());
        assert!(cid_multihash("not-a-cid").is_none());
    }
}
