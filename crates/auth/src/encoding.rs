//! Byte-level helpers shared by both dialects: percent coding, header lookup, digests, comparison.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AuthError;

/// RFC 3986 unreserved characters stay literal, everything else becomes `%XX` (upper-case hex).
/// Alibaba's `percentEncode` and Python's `quote(s, safe='~')` (Huawei) both produce exactly this.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub(crate) fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, UNRESERVED).to_string()
}

/// Form decoding (`+` = space, `%XX`), strict UTF-8: the decoded text is what gets signed and what
/// the handlers see, so it must not depend on a lossy replacement.
pub(crate) fn form_decode(raw: &str) -> Result<Vec<(String, String)>, AuthError> {
    fn component(s: &str) -> Result<String, AuthError> {
        let plus_as_space: Cow<str> = if s.contains('+') { Cow::Owned(s.replace('+', " ")) } else { Cow::Borrowed(s) };
        percent_decode(plus_as_space.as_bytes())
            .decode_utf8()
            .map(Cow::into_owned)
            .map_err(|_| AuthError::MalformedParameters)
    }
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((component(k)?, component(v)?))
        })
        .collect()
}

/// Value of a header (name compared case-insensitively), trimmed. Repeated headers are joined with
/// "," as HTTP does, so the value that is signed is also the value that is used.
pub(crate) fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut values = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    let mut joined = values.next()?.to_owned();
    for v in values {
        joined.push(',');
        joined.push_str(v);
    }
    Some(joined)
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The three fields of an `Authorization: <ALG> K1=v1,K2=v2,K3=v3` header (Alibaba writes no space
/// after the commas, Huawei writes one). A field that is absent or empty is `None`.
pub(crate) struct AuthFields<'a> {
    pub key_id: Option<&'a str>,
    pub signed_headers: Option<&'a str>,
    pub signature: Option<&'a str>,
}

pub(crate) fn parse_auth_fields<'a>(rest: &'a str, key_id_field: &str) -> AuthFields<'a> {
    let mut fields = AuthFields { key_id: None, signed_headers: None, signature: None };
    for part in rest.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let slot = match name.trim() {
            n if n == key_id_field => &mut fields.key_id,
            "SignedHeaders" => &mut fields.signed_headers,
            "Signature" => &mut fields.signature,
            _ => continue,
        };
        // First occurrence wins; a repeated field cannot smuggle in a second value.
        slot.get_or_insert(value);
    }
    fields
}

/// `a;b;c` -> ["a", "b", "c"]; an empty entry means the header is malformed.
pub(crate) fn split_signed_headers(list: &str) -> Result<Vec<String>, AuthError> {
    list.split(';')
        .map(|h| {
            let h = h.trim();
            if h.is_empty() {
                Err(AuthError::IncompleteSignature { reason: "SignedHeaders contains an empty entry" })
            } else {
                Ok(h.to_owned())
            }
        })
        .collect()
}

/// `name:value\n` for each signed header, values as received (trimmed, inner whitespace kept).
/// A signed header that is absent canonicalizes as empty and the signature then fails to match.
pub(crate) fn canonical_headers(out: &mut String, headers: &[(String, String)], signed: &[String]) {
    for name in signed {
        out.push_str(name);
        out.push(':');
        out.push_str(&header(headers, name).unwrap_or_default());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use percent_encoding::percent_decode_str;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// What `encode` writes is unreserved characters and upper-case `%XX` only, and both decoders (form
        /// decoding for Alibaba, plain percent-decoding for Huawei) read back the original.
        #[test]
        fn percent_encoding_round_trips(s in any::<String>()) {
            let e = encode(s.as_bytes());
            prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)), "{}", e);
            for (i, _) in e.match_indices('%') {
                let hex = &e[i + 1..i + 3];
                prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)), "{}", e);
            }
            prop_assert_eq!(percent_decode_str(&e).decode_utf8().expect("UTF-8").into_owned(), s.clone());
            let pairs = form_decode(&format!("{e}={e}")).expect("decodes");
            prop_assert_eq!(pairs, vec![(s.clone(), s)]);
        }

        /// A query built from encoded pairs form-decodes to the same pairs, in order, repeats included.
        #[test]
        fn form_queries_round_trip(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..6)) {
            let query: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(v.as_bytes()))).collect();
            prop_assert_eq!(form_decode(&query.join("&")).expect("decodes"), pairs);
        }

        /// `SignedHeaders` lists split back into the names they were joined from.
        #[test]
        fn signed_header_lists_round_trip(names in proptest::collection::vec("[!-:<-~]{1,20}", 1..8)) {
            prop_assert_eq!(split_signed_headers(&names.join(";")).expect("splits"), names);
        }
    }
}
