//! Validation of names, descriptions, addresses, CIDR lists, ASNs, keys and tags — in one module, so handlers of
//! both dialects apply the same rules.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Error, Field, Result};

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF)
}

fn starts_like_a_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || is_cjk(c))
}

fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// A resource name: `min..=max` characters, starting with a letter or Chinese character, then letters, Chinese,
/// digits, `_`, `-` and (where `allow_dot`) `.`; never a URL.
pub fn name(value: &str, min: usize, max: usize, allow_dot: bool) -> Result<()> {
    let len = value.chars().count();
    let ok = (min..=max).contains(&len)
        && starts_like_a_name(value)
        && !is_url(value)
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || is_cjk(c) || c == '_' || c == '-' || (allow_dot && c == '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::Name, format!("must be {min}-{max} characters, start with a letter")))
    }
}

/// A description: 2..=max characters starting with a letter or Chinese character, no control characters, not a URL.
pub fn description(value: &str, max: usize) -> Result<()> {
    let len = value.chars().count();
    let ok =
        (2..=max).contains(&len) && starts_like_a_name(value) && !is_url(value) && !value.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::Description, format!("must be 2-{max} characters, start with a letter")))
    }
}

/// A unicast IPv4 address in dotted-quad form.
pub fn ipv4(value: &str, field: Field) -> Result<Ipv4Addr> {
    let ip: Ipv4Addr = value.trim().parse().map_err(|_| Error::invalid(field, "not an IPv4 address"))?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err(Error::invalid(field, "not a usable unicast address"));
    }
    Ok(ip)
}

/// One IPv4 CIDR block whose host bits are zero.
pub fn cidr(value: &str, field: Field) -> Result<Ipv4Net> {
    let net: Ipv4Net =
        value.trim().parse().map_err(|_| Error::invalid(field, format!("({value}) is not a CIDR block")))?;
    if net.network() != net.addr() {
        return Err(Error::invalid(field, format!("({value}) has host bits set")));
    }
    Ok(net)
}

/// A comma-separated list of CIDR blocks without duplicates; returns the blocks and the normalised text.
pub fn cidr_list(value: &str, field: Field) -> Result<(Vec<Ipv4Net>, String)> {
    let mut nets = Vec::new();
    for part in value.split(',') {
        let net = cidr(part, field)?;
        if nets.contains(&net) {
            return Err(Error::invalid(field, format!("({value}) lists {net} twice")));
        }
        nets.push(net);
    }
    if nets.is_empty() {
        return Err(Error::invalid(field, "empty"));
    }
    let text = nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    Ok((nets, text))
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// An autonomous system number: plain (1..=4294967295) or asdot `high.low`.
pub fn asn(value: &str) -> Result<u64> {
    let bad = || Error::invalid(Field::Asn, format!("({value}) is not an ASN"));
    let v = value.trim();
    let n = match v.split_once('.') {
        Some((hi, lo)) => {
            let hi: u64 = hi.parse().map_err(|_| bad())?;
            let lo: u64 = lo.parse().map_err(|_| bad())?;
            if hi > 65535 || lo > 65535 {
                return Err(bad());
            }
            hi * 65536 + lo
        }
        None => v.parse().map_err(|_| bad())?,
    };
    if (1..=4_294_967_295).contains(&n) {
        Ok(n)
    } else {
        Err(bad())
    }
}

/// A BGP authentication key: 1..=64 printable ASCII, no space, no `?`.
pub fn auth_key(value: &str) -> Result<()> {
    let ok = (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic() && b != b'?');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::AuthKey, "must be 1-64 ASCII characters without spaces or '?'"))
    }
}

/// A pre-shared key: 1..=100 printable ASCII characters without spaces.
pub fn psk(value: &str) -> Result<()> {
    let ok = (1..=100).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::Psk, "must be 1-100 printable ASCII characters without spaces"))
    }
}

/// An IKE identity (IP or FQDN), at most 100 characters.
pub fn ike_identity(value: &str) -> Result<()> {
    let ok = (1..=100).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::IkeConfig, "LocalId/RemoteId must be 1-100 characters without spaces"))
    }
}

fn tag_text_ok(value: &str) -> bool {
    let l = value.to_ascii_lowercase();
    !l.starts_with("aliyun") && !l.starts_with("acs:") && !l.contains("http://") && !l.contains("https://")
}

pub fn tag_key(value: &str) -> Result<()> {
    if (1..=64).contains(&value.chars().count()) && tag_text_ok(value) {
        Ok(())
    } else {
        Err(Error::invalid(Field::TagKey, "1-64 characters, not starting with aliyun or acs:, no URLs"))
    }
}

pub fn tag_value(value: &str) -> Result<()> {
    if value.chars().count() <= 128 && (value.is_empty() || tag_text_ok(value)) {
        Ok(())
    } else {
        Err(Error::invalid(Field::TagValue, "at most 128 characters, not starting with aliyun or acs:, no URLs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("MYVPN", 2, 100, false).is_ok());
        assert!(name("网关-1_a", 2, 100, false).is_ok());
        assert!(name("a", 2, 100, false).is_err());
        assert!(name("1abc", 2, 100, false).is_err());
        assert!(name("ab.c", 2, 100, false).is_err());
        assert!(name("ab.c", 2, 128, true).is_ok());
        assert!(name("my gw", 2, 100, false).is_err());
        assert!(name(&"a".repeat(101), 2, 100, false).is_err());
        assert!(name("https://x", 2, 100, true).is_err());
    }

    #[test]
    fn descriptions() {
        assert!(description("test description 1.", 100).is_ok());
        assert!(description("t", 100).is_err());
        assert!(description("-abc", 100).is_err());
        assert!(description("http://abc", 100).is_err());
    }

    #[test]
    fn cidrs() {
        let (nets, text) = cidr_list("10.0.0.0/8, 192.168.1.0/24", Field::LocalSubnet).expect("valid");
        assert_eq!(nets.len(), 2);
        assert_eq!(text, "10.0.0.0/8,192.168.1.0/24");
        assert!(cidr_list("10.0.0.1/8", Field::LocalSubnet).is_err());
        assert!(cidr_list("10.0.0.0/33", Field::LocalSubnet).is_err());
        assert!(cidr_list("10.0.0.0/8,10.0.0.0/8", Field::LocalSubnet).is_err());
        assert!(cidr_list("", Field::LocalSubnet).is_err());
        let a = cidr("10.0.0.0/8", Field::LocalSubnet).expect("valid");
        let b = cidr("10.1.0.0/16", Field::LocalSubnet).expect("valid");
        let c = cidr("11.0.0.0/16", Field::LocalSubnet).expect("valid");
        assert!(overlaps(&a, &b) && overlaps(&b, &a) && !overlaps(&a, &c));
    }

    #[test]
    fn asns() {
        assert_eq!(asn("65530").ok(), Some(65530));
        assert_eq!(asn("123.456").ok(), Some(123 * 65536 + 456));
        assert!(asn("0").is_err());
        assert!(asn("4294967296").is_err());
        assert!(asn("1.70000").is_err());
        assert!(asn("abc").is_err());
    }

    #[test]
    fn keys_and_tags() {
        assert!(auth_key("AuthKey123").is_ok());
        assert!(auth_key("has space").is_err());
        assert!(auth_key("what?").is_err());
        assert!(psk(&"x".repeat(100)).is_ok());
        assert!(psk(&"x".repeat(101)).is_err());
        assert!(tag_key("FinanceDept").is_ok());
        assert!(tag_key("aliyun-x").is_err());
        assert!(tag_key("").is_err());
        assert!(tag_value("").is_ok());
        assert!(tag_value("acs:x").is_err());
    }

    #[test]
    fn addresses() {
        assert!(ipv4("198.51.100.7", Field::IpAddress).is_ok());
        assert!(ipv4("0.0.0.0", Field::IpAddress).is_err());
        assert!(ipv4("224.0.0.1", Field::IpAddress).is_err());
        assert!(ipv4("1.2.3", Field::IpAddress).is_err());
    }
}
