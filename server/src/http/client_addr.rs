//! The client's address behind trusted reverse proxies
//! (`PASSGATE_TRUSTED_PROXIES`), and the key a per-client rate limit
//! counts it under.
//!
//! Only a TCP peer inside a trusted network may name the client, in
//! `Forwarded: for=…` (RFC 7239) when the request has one, else in
//! `X-Forwarded-For`. The chain is walked from the right, past the
//! trusted proxies: the first hop that is not one was written by our own
//! proxy and is the client; what lies left of it is the client's to say
//! and never read. A header from any other peer is ignored, and one that
//! cannot be read where it matters names no one: the peer it is.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::{header, HeaderMap};

/// A network, `address/prefix-length` (a bare address is one host).
///
/// Parsed by hand: no CIDR crate (`ipnet`, `ipnetwork`, `cidr`) is in the
/// dependency tree, and membership is a masked comparison, not worth a new
/// dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// With the host bits cleared.
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is inside (an IPv4-mapped IPv6 address as its IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip, self.prefix) == net,
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.trim(), Some(prefix.trim())),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would take a sign (`+8`).
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{p:?} is not a prefix length from 0 to {max}"))?,
        };
        let addr = match addr {
            IpAddr::V4(ip) => IpAddr::V4(mask_v4(ip, prefix)),
            IpAddr::V6(ip) => IpAddr::V6(mask_v6(ip, prefix)),
        };
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask_v4(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(ip) & mask)
}

fn mask_v6(ip: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(ip) & mask)
}

/// A comma-separated list of networks (empty entries skipped).
pub fn parse_networks(text: &str) -> Result<Vec<Network>, String> {
    text.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::parse).collect()
}

fn trusted(ip: IpAddr, proxies: &[Network]) -> bool {
    proxies.iter().any(|net| net.contains(ip))
}

/// The client's address: `peer` (the TCP peer), unless it is a trusted
/// proxy that names the client in `Forwarded` or `X-Forwarded-For`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[Network]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops = if headers.contains_key(header::FORWARDED) {
        joined(headers, header::FORWARDED).and_then(|value| forwarded_for(&value))
    } else if headers.contains_key(X_FORWARDED_FOR) {
        joined(headers, X_FORWARDED_FOR).map(|value| x_forwarded_for(&value))
    } else {
        return peer;
    };
    hops.and_then(|hops| pick(&hops, proxies)).unwrap_or(peer)
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Every line of a header, joined as one list (RFC 9110 section 5.3);
/// `None` if one is not visible ASCII.
fn joined(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    let lines: Option<Vec<&str>> = headers.get_all(name).iter().map(|v| v.to_str().ok()).collect();
    Some(lines?.join(","))
}

/// From the right: the first hop that is not a trusted proxy; if all
/// are, the left-most. `None` (no one) if a hop on the way cannot be read
/// as an address.
fn pick(hops: &[Option<IpAddr>], proxies: &[Network]) -> Option<IpAddr> {
    for hop in hops.iter().rev() {
        let ip = (*hop)?;
        if !trusted(ip, proxies) {
            return Some(ip);
        }
    }
    *hops.first()?
}

/// `X-Forwarded-For: client, proxy1, proxy2`: each hop's address, or
/// `None` where one is not an address.
fn x_forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    value.split(',').map(str::trim).filter(|hop| !hop.is_empty()).map(node).collect()
}

/// `Forwarded: for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"`:
/// each element's `for`, as an address or `None` (absent, `unknown`, an
/// obfuscated name). `None` for the whole header if it is not even a list
/// of `name=value` pairs (an unterminated quote and the like).
fn forwarded_for(value: &str) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for element in split_unquoted(value, ',')? {
        if element.trim().is_empty() {
            continue;
        }
        let mut hop = None;
        for pair in split_unquoted(&element, ';')? {
            if pair.trim().is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=')?;
            if name.trim().eq_ignore_ascii_case("for") {
                hop = node(&unquote(value.trim())?);
            }
        }
        hops.push(hop);
    }
    Some(hops)
}

/// `text` cut at each `separator` outside a quoted string; `None` if a
/// quote is left open.
fn split_unquoted(text: &str, separator: char) -> Option<Vec<String>> {
    let (mut parts, mut part) = (Vec::new(), String::new());
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(std::mem::take(&mut part));
            continue;
        }
        part.push(c);
    }
    if quoted || escaped {
        return None;
    }
    parts.push(part);
    Some(parts)
}

/// A token as is, a quoted string without its quotes and escapes.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else { return Some(value.to_owned()) };
    let inner = inner.strip_suffix('"')?;
    let (mut out, mut escaped) = (String::new(), false);
    for c in inner.chars() {
        if !escaped && c == '\\' {
            escaped = true;
        } else {
            out.push(c);
            escaped = false;
        }
    }
    Some(out)
}

/// One hop: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or_default().parse::<Ipv6Addr>().map(IpAddr::V6))
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(text: &str) -> Vec<Network> {
        parse_networks(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const PROXY: &str = "10.0.0.5";

    fn from_proxy(pairs: &[(&str, &str)]) -> IpAddr {
        client_ip(ip(PROXY), &headers(pairs), &nets("10.0.0.0/8, 2001:db8:ffff::/48"))
    }

    #[test]
    fn networks_parse_checked_and_contain_their_addresses() {
        let net: Network = "192.168.1.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "192.168.1.0/24");
        assert!(net.contains(ip("192.168.1.1")) && net.contains(ip("::ffff:192.168.1.200")));
        assert!(!net.contains(ip("192.168.2.1")) && !net.contains(ip("::1")));
        let host: Network = "127.0.0.1".parse().unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::9")) && !v6.contains(ip("2001:db9::1")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.7")) && !all.contains(ip("2001:db8::1")));
        assert!("::/0".parse::<Network>().unwrap().contains(ip("2001:db8::1")));
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0/8", "example.com/8", "10.0.0.0/8/8"] {
            assert!(bad.parse::<Network>().is_err(), "{bad:?}");
        }
        assert_eq!(parse_networks(" 10.0.0.0/8 , ,::1/128 ").unwrap().len(), 2);
        assert!(parse_networks("").unwrap().is_empty());
        assert!(parse_networks("10.0.0.0/8, nope").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_headers_say() {
        let forged = headers(&[("x-forwarded-for", "198.51.100.1"), ("forwarded", "for=198.51.100.2")]);
        assert_eq!(client_ip(ip("203.0.113.9"), &forged, &nets("10.0.0.0/8")), ip("203.0.113.9"));
        // No proxy trusted (the default): headers are never read.
        assert_eq!(client_ip(ip(PROXY), &forged, &[]), ip(PROXY));
    }

    #[test]
    fn a_trusted_peer_names_the_right_most_untrusted_hop() {
        assert_eq!(from_proxy(&[("x-forwarded-for", "198.51.100.1")]), ip("198.51.100.1"));
        // The client made up the first hop; our proxies added the rest.
        let chain = [("x-forwarded-for", "192.0.2.66, 203.0.113.7, 10.1.2.3")];
        assert_eq!(from_proxy(&chain), ip("203.0.113.7"));
        // Lines are one list, in order.
        let lines = [("x-forwarded-for", "192.0.2.66"), ("x-forwarded-for", "203.0.113.7, 10.1.2.3")];
        assert_eq!(from_proxy(&lines), ip("203.0.113.7"));
        // Every hop a proxy: the left-most.
        assert_eq!(from_proxy(&[("x-forwarded-for", "10.9.9.9, 10.1.2.3")]), ip("10.9.9.9"));
        // Garbage left of the client is the client's own, never read.
        assert_eq!(from_proxy(&[("x-forwarded-for", "not an address, 203.0.113.7")]), ip("203.0.113.7"));
        // Ports and brackets, as some proxies write them.
        assert_eq!(from_proxy(&[("x-forwarded-for", "203.0.113.7:4711")]), ip("203.0.113.7"));
        assert_eq!(from_proxy(&[("x-forwarded-for", "[2001:db8::1]:4711, 2001:db8:ffff::2")]), ip("2001:db8::1"));
        assert_eq!(from_proxy(&[("x-forwarded-for", "::ffff:203.0.113.7")]), ip("203.0.113.7"));
        // Without a header, the proxy itself.
        assert_eq!(from_proxy(&[]), ip(PROXY));
    }

    #[test]
    fn the_forwarded_header_wins_quoted_ipv6_and_ports_included() {
        let both = [("x-forwarded-for", "198.51.100.1"), ("forwarded", r#"for="[2001:db8::1]:4711""#)];
        assert_eq!(from_proxy(&both), ip("2001:db8::1"));
        let chain = [("forwarded", r#"for=192.0.2.43;proto=https, For="[2001:db8:cafe::17]";by=10.0.0.1, for=10.1.2.3"#)];
        assert_eq!(from_proxy(&chain), ip("2001:db8:cafe::17"));
        assert_eq!(from_proxy(&[("forwarded", r#"for="192.0.2.60:8080""#)]), ip("192.0.2.60"));
        assert_eq!(from_proxy(&[("forwarded", "proto=https;for=192.0.2.60")]), ip("192.0.2.60"));
        // A comma or semicolon inside quotes cuts nothing.
        assert_eq!(from_proxy(&[("forwarded", r#"for="a,b;c", for=192.0.2.60"#)]), ip("192.0.2.60"));
        assert_eq!(from_proxy(&[("forwarded", "for=10.9.9.9, for=10.1.2.3")]), ip("10.9.9.9"));
    }

    #[test]
    fn garbage_names_no_one_and_the_peer_is_the_client() {
        for value in ["", "unknown", "nope", "203.0.113.7, garbage", "203.0.113.7,,_hidden", "999.1.1.1", "[2001:db8::1"] {
            assert_eq!(from_proxy(&[("x-forwarded-for", value)]), ip(PROXY), "X-Forwarded-For: {value:?}");
        }
        for value in [
            "",
            "for=unknown",
            "for=_hidden",
            r#"for="[2001:db8::1]:4711"#,
            "for",
            "proto=https",
            "for=192.0.2.60, by=10.0.0.1",
            "for=nonsense",
            r#"for="192.0.2.60\"#,
        ] {
            assert_eq!(from_proxy(&[("forwarded", value)]), ip(PROXY), "Forwarded: {value:?}");
        }
        // Not visible ASCII: unreadable, not a 500.
        let mut opaque = HeaderMap::new();
        opaque.insert("x-forwarded-for", HeaderValue::from_bytes(b"203.0.113.\xff").unwrap());
        assert_eq!(client_ip(ip(PROXY), &opaque, &nets("10.0.0.0/8")), ip(PROXY));
    }
}
