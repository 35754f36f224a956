//! Checks on a request as a whole, before authentication and routing read any of it: a scalar query parameter
//! given twice, a JSON member given twice, control characters and oversized values are refused with `VPN.0001`,
//! so that what openvgw acts on is what any proxy or audit log reading the same request sees.

use std::collections::HashSet;
use std::fmt;

use openvgw_core::validate::forbidden_char;
use percent_encoding::percent_decode_str;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::HwError;

/// Query parameters the API takes as lists (`?vgw_id=a&vgw_id=b`).
const REPEATABLE: &[&str] = &["vgw_id", "cgw_id", "enterprise_project_id"];
const MAX_QUERY_PARAMS: usize = 200;
const MAX_QUERY_VALUE: usize = 1024;
/// A JSON string at most (certificate and key PEMs are the longest values the API takes).
const MAX_JSON_STRING: usize = 64 * 1024;
/// Members of one JSON object / items of one array at most.
const MAX_JSON_ITEMS: usize = 1000;

/// The query's pairs, decoded (`+` is a space), in order.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    let dec = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

pub fn check_query(raw: &str) -> Result<(), HwError> {
    let pairs = parse_query(raw);
    if pairs.len() > MAX_QUERY_PARAMS {
        return Err(HwError::invalid(format!("at most {MAX_QUERY_PARAMS} query parameters")));
    }
    let mut seen = HashSet::new();
    for (k, v) in pairs {
        if k.len() > 64 || !k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return Err(HwError::invalid("a query parameter name must be 1-64 letters, digits, '_', '-' or '.'"));
        }
        if v.len() > MAX_QUERY_VALUE || v.chars().any(forbidden_char) {
            return Err(HwError::invalid(format!(
                "query parameter {k}: at most {MAX_QUERY_VALUE} bytes, no control characters"
            )));
        }
        if !REPEATABLE.contains(&k.as_str()) && !seen.insert(k.clone()) {
            return Err(HwError::invalid(format!("query parameter {k} is given more than once")));
        }
    }
    Ok(())
}

/// A body that is JSON is walked once; one that is not is left to the operation's decoder (which says why).
pub fn check_body(body: &[u8]) -> Result<(), HwError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match Checked::default().deserialize(&mut de) {
        Ok(()) => Ok(()),
        Err(e) if e.is_data() => Err(HwError::invalid(format!("body: {e}"))),
        // Syntax errors: the operation's decoder reports them with the field it expected.
        Err(_) => Ok(()),
    }
}

/// Walks any JSON value, refusing duplicate members, control characters and oversized strings or collections.
/// `id` is set under a member named `…_id` / `…_ids`: ids are short words.
#[derive(Clone, Copy, Default)]
struct Checked {
    id: bool,
}

const MAX_ID: usize = 128;

/// `…_id` members hold resource ids, except the IKE identities (`local_id`, `peer_id`: an FQDN, an address or a
/// user@domain, checked by the connection's own rules).
fn is_id_member(key: &str) -> bool {
    (key.ends_with("_id") || key.ends_with("_ids") || key == "id") && !matches!(key, "local_id" | "peer_id")
}

fn check_id<E: de::Error>(s: &str) -> Result<(), E> {
    if s.len() > MAX_ID || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
        return Err(E::custom(format!("an id must be at most {MAX_ID} letters, digits, '-', '_', '.' or ':'")));
    }
    Ok(())
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn check_str<E: de::Error>(s: &str) -> Result<(), E> {
    if s.len() > MAX_JSON_STRING {
        return Err(E::custom(format!("a string is longer than {MAX_JSON_STRING} bytes")));
    }
    if s.chars().any(forbidden_char) {
        return Err(E::custom("a string contains control characters"));
    }
    Ok(())
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        check_str(s)?;
        if self.id {
            check_id(s)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        while seq.next_element_seed(self)?.is_some() {
            n += 1;
            if n > MAX_JSON_ITEMS {
                return Err(de::Error::custom(format!("an array has more than {MAX_JSON_ITEMS} items")));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            check_str::<A::Error>(&key)?;
            if keys.len() >= MAX_JSON_ITEMS {
                return Err(de::Error::custom(format!("an object has more than {MAX_JSON_ITEMS} members")));
            }
            if !keys.insert(key.clone()) {
                return Err(de::Error::custom(format!("member {key} is given more than once")));
            }
            map.next_value_seed(Checked { id: is_id_member(&key) })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert!(check_query("limit=10&marker=abc&vgw_id=a&vgw_id=b").is_ok());
        assert!(check_query("limit=10&limit=1000").is_err());
        assert!(check_query("name=%01").is_err());
        assert!(check_query(&format!("name={}", "a".repeat(1025))).is_err());
        assert!(check_query("na%20me=x").is_err());
    }

    #[test]
    fn bodies() {
        assert!(check_body(br#"{"vpn_gateway":{"name":"a","local_subnets":["10.0.0.0/24"],"n":1.5,"b":null}}"#).is_ok());
        assert!(check_body(b"").is_ok());
        assert!(check_body(br#"{"a":1,"a":2}"#).is_err());
        assert!(check_body(br#"{"v":{"name":"x","name":"y"}}"#).is_err());
        assert!(check_body(br#"{"name":"a\u0001b"}"#).is_err());
        assert!(check_body(br#"{"name":"a\u001b[31m"}"#).is_err());
        assert!(check_body(br#"{"description":"line\nbreak"}"#).is_ok());
        let long = format!(r#"{{"s":"{}"}}"#, "a".repeat(MAX_JSON_STRING + 1));
        assert!(check_body(long.as_bytes()).is_err());
        assert!(check_body(br#"{"v":{"vpc_id":"a b"}}"#).is_err());
        assert!(check_body(format!(r#"{{"v":{{"vpc_id":"{}"}}}}"#, "a".repeat(129)).as_bytes()).is_err());
        assert!(check_body(br#"{"v":{"local_subnets":["a b"],"policy_rules":[{"rule_index":1}]}}"#).is_ok());
        assert!(check_body(br#"{"v":{"cgw_ids":["a","b c"]}}"#).is_err());
        assert!(check_body(br#"{"ikepolicy":{"local_id":"user@example.com","peer_id":"vpn.example.com"}}"#).is_ok());
        // Not JSON: left to the operation's decoder.
        assert!(check_body(b"{not json").is_ok());
    }
}
