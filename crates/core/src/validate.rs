//! Validation of names, descriptions, addresses, CIDR lists, ASNs, keys and tags — in one module, so every dialect
//! applies the same rules. Limits that differ by vendor (a name's length) are parameters.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Error, Field, Result, Rule};

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

/// A character no request value may carry, in any dialect: control characters (tab and line breaks aside) and the
/// code points XML cannot represent, so that nothing stored can make a reply unparseable or a log line misleading.
pub fn forbidden_char(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
}

/// A resource name: `min..=max` characters, starting with a letter or Chinese character, then letters, Chinese,
/// digits, `_`, `-` and (where `allow_dot`) `.`; never a URL.
pub fn name(value: &str, min: usize, max: usize, allow_dot: bool) -> Result<()> {
    let len = value.chars().count();
    if !(min..=max).contains(&len) {
        return Err(Error::invalid(Field::Name, Rule::Length { min, max }));
    }
    let ok = starts_like_a_name(value)
        && !is_url(value)
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || is_cjk(c) || c == '_' || c == '-' || (allow_dot && c == '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::Name, Rule::NameFormat))
    }
}

/// A description: 2..=max characters starting with a letter or Chinese character, no control characters, not a URL.
pub fn description(value: &str, max: usize) -> Result<()> {
    let len = value.chars().count();
    if !(2..=max).contains(&len) {
        return Err(Error::invalid(Field::Description, Rule::Length { min: 2, max }));
    }
    if starts_like_a_name(value) && !is_url(value) && !value.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(Error::invalid(Field::Description, Rule::DescriptionFormat))
    }
}

/// A unicast IPv4 address in dotted-quad form.
pub fn ipv4(value: &str, field: Field) -> Result<Ipv4Addr> {
    let ip: Ipv4Addr = value.trim().parse().map_err(|_| Error::invalid(field, Rule::NotAnAddress))?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err(Error::invalid(field, Rule::NotUnicast));
    }
    Ok(ip)
}

/// One IPv4 CIDR block whose host bits are zero.
pub fn cidr(value: &str, field: Field) -> Result<Ipv4Net> {
    let net: Ipv4Net = value.trim().parse().map_err(|_| Error::invalid(field, Rule::NotACidr))?;
    if net.network() != net.addr() {
        return Err(Error::invalid(field, Rule::HostBitsSet));
    }
    Ok(net)
}

/// A list of CIDR blocks without duplicates (at least one).
pub fn cidrs<S: AsRef<str>>(values: &[S], field: Field) -> Result<Vec<Ipv4Net>> {
    let mut nets = Vec::new();
    for v in values {
        let net = cidr(v.as_ref(), field)?;
        if nets.contains(&net) {
            return Err(Error::invalid(field, Rule::Duplicate));
        }
        nets.push(net);
    }
    if nets.is_empty() {
        return Err(Error::invalid(field, Rule::Required));
    }
    Ok(nets)
}

/// A comma-separated list of CIDR blocks without duplicates.
pub fn cidr_list(value: &str, field: Field) -> Result<Vec<Ipv4Net>> {
    let parts: Vec<&str> = value.split(',').collect();
    cidrs(&parts, field)
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// An autonomous system number: plain (1..=4294967295) or asdot `high.low`.
pub fn asn(value: &str) -> Result<u64> {
    let bad = || Error::invalid(Field::Asn, Rule::Range { min: 1, max: 4_294_967_295 });
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
pub fn bgp_auth_key(value: &str) -> Result<()> {
    let ok = (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic() && b != b'?');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::BgpAuthKey, Rule::Printable))
    }
}

/// A pre-shared key: 1..=`max` printable ASCII characters without spaces.
pub fn psk(value: &str, max: usize) -> Result<()> {
    if !(1..=max).contains(&value.len()) {
        return Err(Error::invalid(Field::Psk, Rule::Length { min: 1, max }));
    }
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Error::invalid(Field::Psk, Rule::Printable))
    }
}

/// An IKE identity (IP or FQDN), at most 100 characters.
pub fn ike_identity(value: &str, field: Field) -> Result<()> {
    if !(1..=100).contains(&value.len()) {
        return Err(Error::invalid(field, Rule::Length { min: 1, max: 100 }));
    }
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Error::invalid(field, Rule::Printable))
    }
}

/// Tag keys and values must not claim a vendor's reserved prefixes (`reserved`, compared case-insensitively) or
/// carry URLs.
fn tag_text_ok(value: &str, reserved: &[&str]) -> bool {
    let l = value.to_ascii_lowercase();
    !reserved.iter().any(|p| l.starts_with(p)) && !l.contains("http://") && !l.contains("https://")
}

pub fn tag_key(value: &str, max: usize, reserved: &[&str]) -> Result<()> {
    if !(1..=max).contains(&value.chars().count()) {
        return Err(Error::invalid(Field::TagKey, Rule::Length { min: 1, max }));
    }
    if tag_text_ok(value, reserved) {
        Ok(())
    } else {
        Err(Error::invalid(Field::TagKey, Rule::Reserved))
    }
}

pub fn tag_value(value: &str, max: usize, reserved: &[&str]) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(Field::TagValue, Rule::Length { min: 0, max }));
    }
    if value.is_empty() || tag_text_ok(value, reserved) {
        Ok(())
    } else {
        Err(Error::invalid(Field::TagValue, Rule::Reserved))
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
        assert!(matches!(
            name("a", 2, 100, false),
            Err(Error::Invalid { rule: Rule::Length { min: 2, max: 100 }, .. })
        ));
    }

    #[test]
    fn descriptions() {
        assert!(description("test description 1.", 100).is_ok());
        assert!(description("t", 100).is_err());
        assert!(description("-abc", 100).is_err());
        assert!(description("http://abc", 100).is_err());
    }

    #[test]
    fn cidr_lists() {
        let nets = cidr_list("10.0.0.0/8, 192.168.1.0/24", Field::LocalSubnets).expect("valid");
        assert_eq!(nets.len(), 2);
        assert_eq!(crate::model::join_nets(&nets), "10.0.0.0/8,192.168.1.0/24");
        assert!(matches!(
            cidr_list("10.0.0.1/8", Field::LocalSubnets),
            Err(Error::Invalid { field: Field::LocalSubnets, rule: Rule::HostBitsSet })
        ));
        assert!(cidr_list("10.0.0.0/33", Field::LocalSubnets).is_err());
        assert!(matches!(
            cidr_list("10.0.0.0/8,10.0.0.0/8", Field::LocalSubnets),
            Err(Error::Invalid { rule: Rule::Duplicate, .. })
        ));
        assert!(cidr_list("", Field::LocalSubnets).is_err());
        let a = cidr("10.0.0.0/8", Field::LocalSubnets).expect("valid");
        let b = cidr("10.1.0.0/16", Field::LocalSubnets).expect("valid");
        let c = cidr("11.0.0.0/16", Field::LocalSubnets).expect("valid");
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
        assert!(bgp_auth_key("AuthKey123").is_ok());
        assert!(bgp_auth_key("has space").is_err());
        assert!(bgp_auth_key("what?").is_err());
        assert!(psk(&"x".repeat(100), 100).is_ok());
        assert!(psk(&"x".repeat(101), 100).is_err());
        let reserved = ["aliyun", "acs:"];
        assert!(tag_key("FinanceDept", 64, &reserved).is_ok());
        assert!(tag_key("aliyun-x", 64, &reserved).is_err());
        assert!(tag_key("aliyun-x", 64, &[]).is_ok());
        assert!(tag_key("", 64, &reserved).is_err());
        assert!(tag_value("", 128, &reserved).is_ok());
        assert!(tag_value("acs:x", 128, &reserved).is_err());
    }

    #[test]
    fn addresses() {
        assert!(ipv4("198.51.100.7", Field::PeerAddress).is_ok());
        assert!(ipv4("0.0.0.0", Field::PeerAddress).is_err());
        assert!(ipv4("224.0.0.1", Field::PeerAddress).is_err());
        assert!(ipv4("1.2.3", Field::PeerAddress).is_err());
    }
}
