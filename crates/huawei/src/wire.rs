//! Wire pieces every resource shares: timestamps, tags, page info, names, and the checks of Huawei's documented
//! character sets and ranges.

use openvgw_core::model::Tag;
use openvgw_core::{Cursor, Error, Field, Page, Rule};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::HwError;

/// `yyyy-MM-ddTHH:mm:ss.SSSZ` (UTC, milliseconds), as the reference documents every `created_at`.
pub fn ts(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Certificate times have no fraction: `2033-10-17T06:21:25Z`.
pub fn ts_seconds(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339).unwrap_or_default()
}

/// A tag as requests carry it when creating a resource (`VpnResourceTag`: both required) and as responses show it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ResourceTag {
    pub key: String,
    pub value: String,
}

impl ResourceTag {
    pub fn of(tags: &[Tag]) -> Vec<ResourceTag> {
        tags.iter().map(|t| ResourceTag { key: t.key.clone(), value: t.value.clone() }).collect()
    }
}

/// Tags given at creation: at most 20, each key and value within Huawei's character set, no key twice.
pub fn creation_tags(tags: Option<Vec<ResourceTag>>) -> Result<Vec<Tag>, HwError> {
    let tags = tags.unwrap_or_default();
    let pairs: Vec<(String, Option<String>)> = tags.into_iter().map(|t| (t.key, Some(t.value))).collect();
    checked_tags(&pairs)
}

/// Checks `(key, value)` pairs (a missing value is an empty one) and makes core tags of them.
pub fn checked_tags(pairs: &[(String, Option<String>)]) -> Result<Vec<Tag>, HwError> {
    if pairs.len() > 20 {
        return Err(HwError::invalid("tags: at most 20 tags"));
    }
    let mut out: Vec<Tag> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        tag_text(key, 1, 128, "tags.key")?;
        let value = value.clone().unwrap_or_default();
        tag_text(&value, 0, 255, "tags.value")?;
        if out.iter().any(|t| t.key == *key) {
            return Err(HwError::invalid(format!("tags: key {key} is given twice")));
        }
        out.push(Tag { key: key.clone(), value });
    }
    Ok(out)
}

/// Letters of any language, digits, spaces and `_ . : = + - @` (and `/` in values, as responses allow); no leading
/// or trailing space, no `_sys_` prefix.
fn tag_text(s: &str, min: usize, max: usize, field: &str) -> Result<(), HwError> {
    let n = s.chars().count();
    if !(min..=max).contains(&n) {
        return Err(HwError::invalid(format!("{field} must be {min}-{max} characters")));
    }
    let ok = s.chars().all(|c| c.is_alphanumeric() || c == ' ' || "_.:=+-@/".contains(c))
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && !s.starts_with("_sys_");
    if ok {
        Ok(())
    } else {
        Err(HwError::invalid(format!("{field} {s:?} has characters other than letters, digits, spaces and _.:=+-@")))
    }
}

/// Keyset page info: `next_marker` (where the next page starts, absent on the last) and `current_count`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PageInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub current_count: u64,
}

impl PageInfo {
    pub fn of<T>(page: &Page<T>) -> PageInfo {
        PageInfo { next_marker: page.next.as_ref().map(marker), current_count: page.items.len() as u64 }
    }
}

/// The marker a client hands back for the next page. Markers are opaque positions in the store's order; the
/// reference describes them as the last item's creation time, which clients never interpret.
pub fn marker(c: &Cursor) -> String {
    c.0.clone()
}

/// A resource name: 1-64 letters, Chinese characters, digits, `_`, `-`, `.`.
pub fn name(value: &str) -> Result<(), HwError> {
    name_of(value, 1, 64, "_-.", Field::Name)
}

pub fn name_of(value: &str, min: usize, max: usize, extra: &str, field: Field) -> Result<(), HwError> {
    let n = value.chars().count();
    if !(min..=max).contains(&n) {
        return Err(crate::error::from_core(
            &Error::invalid(field, Rule::Length { min, max }),
            crate::ops::Family::S2c,
        ));
    }
    if value.chars().all(|c| c.is_ascii_alphanumeric() || is_cjk(c) || extra.contains(c)) {
        Ok(())
    } else {
        Err(HwError::invalid(format!(
            "{} {value:?} may only contain letters, Chinese characters, digits and {extra}",
            crate::error::field_name(field)
        )))
    }
}

pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FA5)
}

/// `prefix-xxxx` with four hex digits: how the service names what the user left unnamed.
pub fn default_name(prefix: &str) -> String {
    format!("{prefix}-{}", openvgw_core::ids::random_hex(4))
}

/// An enum value on the wire (`style`, `flavor`…): the accepted spellings in the error.
pub fn one_of<T: Copy>(field: &str, value: &str, table: &[(&str, T)]) -> Result<T, HwError> {
    table.iter().find(|(w, _)| *w == value).map(|(_, v)| *v).ok_or_else(|| {
        let all: Vec<&str> = table.iter().map(|(w, _)| *w).collect();
        HwError::invalid(format!("{field} must be one of {}", all.join(", ")))
    })
}

/// The wire word of a value.
pub fn word_of<T: PartialEq + Copy>(value: T, table: &[(&'static str, T)]) -> &'static str {
    table.iter().find(|(_, v)| *v == value).map(|(w, _)| *w).unwrap_or("")
}

/// An integer within `min..=max`.
pub fn range(field: &str, v: i64, min: i64, max: i64) -> Result<(), HwError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(HwError::invalid(format!("{field} must be {min}-{max}")))
    }
}

/// A 36-character id as the reference documents them; only its length and characters are checked (sample ids are
/// not always hex).
pub fn uuid_like(field: &str, v: &str) -> Result<(), HwError> {
    if v.len() == 36 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(HwError::invalid(format!("{field} must be a 36-character id")))
    }
}

/// Parses a PEM certificate; `name` stands for it in the errors (`VPN.0074` not PEM, `VPN.0075` not decodable).
pub fn inspect(name: &str, pem: &str) -> Result<openvgw_pki::Inspected, HwError> {
    openvgw_pki::inspect(pem).map_err(|e| match e {
        openvgw_pki::InspectError::Format => {
            HwError::new(400, "VPN.0074", format!("The format of the certificate {name} is invalid."))
        }
        openvgw_pki::InspectError::Content => {
            HwError::new(400, "VPN.0075", format!("The content of the certificate {name} is invalid."))
        }
    })
}

/// What the model keeps of an inspected certificate.
pub fn certificate_info(i: openvgw_pki::Inspected) -> openvgw_core::model::CertificateInfo {
    openvgw_core::model::CertificateInfo {
        pem: i.pem,
        issuer: i.issuer,
        subject: i.subject,
        serial: i.serial_hex,
        not_after: i.not_after.saturating_mul(1000),
        signature_algorithm: i.signature_algorithm,
    }
}

/// Serial numbers are shown in decimal.
pub fn serial_decimal(hex: &str) -> String {
    let mut digits: Vec<u32> = vec![0];
    for h in hex.chars().filter_map(|c| c.to_digit(16)) {
        let mut carry = h;
        for d in digits.iter_mut() {
            let v = *d * 16 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push(carry % 10);
            carry /= 10;
        }
    }
    digits.iter().rev().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(ts(1_751_077_347_240), "2025-06-28T02:22:27.240Z");
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts_seconds(1_751_077_347_240), "2025-06-28T02:22:27Z");
    }

    #[test]
    fn decimal_serials() {
        assert_eq!(serial_decimal("0f"), "15");
        assert_eq!(serial_decimal("e5d3a5f2c1b0a9f9"), "16560762716821694969");
        assert_eq!(serial_decimal(""), "0");
    }

    #[test]
    fn tags_and_names() {
        assert!(checked_tags(&[("key 1".into(), Some("v@x".into()))]).is_ok());
        assert!(checked_tags(&[("k".into(), None)]).is_ok());
        assert!(checked_tags(&[("".into(), None)]).is_err());
        assert!(checked_tags(&[("k#".into(), None)]).is_err());
        assert!(checked_tags(&[("_sys_k".into(), None)]).is_err());
        assert!(checked_tags(&[("k".into(), None), ("k".into(), None)]).is_err());
        let many: Vec<(String, Option<String>)> = (0..21).map(|i| (format!("k{i}"), None)).collect();
        assert!(checked_tags(&many).is_err());
        assert!(name("vpngw-9f24").is_ok() && name("网关.1").is_ok() && name("1gw").is_ok());
        assert!(name("").is_err() && name("a b").is_err() && name(&"a".repeat(65)).is_err());
    }
}
