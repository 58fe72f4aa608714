//! The address filter many rust-libp2p apps apply before `Kademlia::add_address`: only addresses another host on
//! the internet could dial. On loopback that is none, so such a bootstrap's routing table stays empty of
//! loopback peers and its FIND_NODE answers carry no peers.

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use std::net::{Ipv4Addr, Ipv6Addr};

pub fn is_routable(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => routable_v4(ip),
        Some(Protocol::Ip6(ip)) => routable_v6(ip),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_)) => true,
        _ => false,
    }
}

fn routable_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    let shared = o[0] == 100 && (o[1] & 0xc0) == 64; // 100.64.0.0/10, carrier-grade NAT
    !(ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast()
        || ip.is_documentation() || shared)
}

fn routable_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let unique_local = (s[0] & 0xfe00) == 0xfc00;
    let link_local = (s[0] & 0xffc0) == 0xfe80;
    !(ip.is_loopback() || ip.is_unspecified() || unique_local || link_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_public_drops_private_and_loopback() {
        let yes = |s: &str| is_routable(&s.parse().unwrap());
        assert!(yes("/ip4/8.8.8.8/tcp/4001"));
        assert!(yes("/dns4/boot.example.org/tcp/4001"));
        assert!(!yes("/ip4/127.0.0.1/tcp/4001"));
        assert!(!yes("/ip4/10.1.2.3/tcp/4001"));
        assert!(!yes("/ip4/192.168.1.1/tcp/4001"));
        assert!(!yes("/ip4/172.17.0.2/tcp/4001"));
        assert!(!yes("/ip4/100.64.0.1/tcp/4001"));
        assert!(!yes("/ip6/::1/tcp/4001"));
        assert!(!yes("/ip6/fd00::1/tcp/4001"));
        assert!(yes("/ip6/2001:4860::8888/tcp/4001"));
    }
}
