//! Typed access to the flattened RPC parameters (`Name`, `ResourceId.N`, `Tag.N.Key`, JSON-string params).

use std::collections::{BTreeMap, HashMap};

use openvgw_core::validate::forbidden_char;
use openvgw_core::{Cursor, PageRequest};
use serde_json::{Map, Value};

use crate::error::WireError;

pub struct Params {
    map: HashMap<String, String>,
}

/// Parameters per request at most (the largest documented request, a connection with its IKE/IPsec/BGP/health
/// check settings and tags, needs about 60).
pub const MAX_PARAMS: usize = 500;
/// Bytes a parameter name may have.
const MAX_NAME: usize = 128;
/// Bytes a parameter value may have, unless listed in [`LONG_PARAMS`].
const MAX_VALUE: usize = 1024;
/// Bytes of the values that legitimately carry documents (JSON settings, a PEM certificate).
const MAX_LONG_VALUE: usize = 64 * 1024;
const LONG_PARAMS: &[&str] = &[
    "IkeConfig",
    "IpsecConfig",
    "BgpConfig",
    "HealthCheckConfig",
    "TunnelOptionsSpecification",
    "RemoteCaCertificate",
    "LocalSubnet",
    "RemoteSubnet",
];
/// Bytes of an id (`VpnGatewayId`, `ResourceId.N`, `ClientToken`…): ids are short words.
const MAX_ID: usize = 128;
/// The highest `N` of a `Name.N` list parameter (Alibaba documents at most 20 tags and 50 resource ids).
pub const MAX_LIST_INDEX: u32 = 100;

/// Whether a parameter names an id (`…Id`, `…Id.N`, `ClientToken`): short, no spaces, no markup.
fn is_id_param(name: &str) -> bool {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('.');
    base.ends_with("Id") || base == "ClientToken" || base == "NextToken"
}

impl Params {
    /// Checks the request's parameters as a whole before anything reads them: a name given twice is refused (a
    /// proxy or audit log may have read the other value), as are oversized names and values, control characters
    /// and ids that are not short words.
    pub fn parse(pairs: &[(String, String)]) -> Result<Params, WireError> {
        if pairs.len() > MAX_PARAMS {
            return Err(WireError::new(
                400,
                "InvalidParameter",
                format!("The request has {} parameters; at most {MAX_PARAMS} are accepted.", pairs.len()),
            ));
        }
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if k.is_empty()
                || k.len() > MAX_NAME
                || !k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(WireError::new(
                    400,
                    "InvalidParameter",
                    "A parameter name must be 1-128 letters, digits, '.', '_' or '-'.",
                ));
            }
            // A dual-tunnel connection's options are flattened: `TunnelOptionsSpecification.1.RemoteCaCertificate`.
            let long =
                LONG_PARAMS.contains(&k.as_str()) || k.rsplit('.').next().is_some_and(|f| LONG_PARAMS.contains(&f));
            let max = if is_id_param(k) {
                MAX_ID
            } else if long {
                MAX_LONG_VALUE
            } else {
                MAX_VALUE
            };
            if v.len() > max {
                return Err(WireError::invalid(k, format!("the value is longer than {max} bytes")));
            }
            if v.chars().any(forbidden_char) {
                return Err(WireError::invalid(k, "the value contains control characters"));
            }
            if is_id_param(k) && !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
            {
                return Err(WireError::invalid(k, "an id is made of letters, digits, '-', '_', '.' and ':'"));
            }
            if map.insert(k.clone(), v.clone()).is_some() {
                return Err(WireError::new(
                    400,
                    "InvalidParameter",
                    format!("The parameter {k} is specified more than once."),
                ));
            }
        }
        Ok(Params { map })
    }

    /// The value, treating an empty one as absent (SDKs send unset optional values as empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The value exactly as sent, empty included.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    pub fn req(&self, name: &str) -> Result<&str, WireError> {
        self.get(name).ok_or_else(|| WireError::missing(name))
    }

    /// Booleans: `true`/`false` in any case (Python SDKs send `True`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, WireError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(WireError::invalid(name, format!("{v} is not a boolean"))),
            })
            .transpose()
    }

    pub fn req_bool(&self, name: &str) -> Result<bool, WireError> {
        self.bool(name)?.ok_or_else(|| WireError::missing(name))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, WireError> {
        self.get(name)
            .map(|v| v.trim().parse::<i64>().map_err(|_| WireError::invalid(name, format!("{v} is not an integer"))))
            .transpose()
    }

    pub fn u32(&self, name: &str) -> Result<Option<u32>, WireError> {
        self.int(name)?
            .map(|v| u32::try_from(v).map_err(|_| WireError::invalid(name, format!("{v} is out of range"))))
            .transpose()
    }

    pub fn req_u32(&self, name: &str) -> Result<u32, WireError> {
        self.u32(name)?.ok_or_else(|| WireError::missing(name))
    }

    /// `Name.1`, `Name.2`, … in index order.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, WireError> {
        let mut items: BTreeMap<u32, String> = BTreeMap::new();
        let dotted = format!("{prefix}.");
        for (k, v) in &self.map {
            if let Some(rest) = k.strip_prefix(&dotted) {
                let n = list_index(prefix, k, rest)?;
                if v.is_empty() {
                    continue;
                }
                items.insert(n, v.clone());
            }
        }
        Ok(items.into_values().collect())
    }

    /// `Prefix.N.Field` objects in index order, as maps of field -> value (empty values kept).
    pub fn objects(&self, prefix: &str) -> Result<Vec<BTreeMap<String, String>>, WireError> {
        let mut items: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        let dotted = format!("{prefix}.");
        for (k, v) in &self.map {
            if let Some(rest) = k.strip_prefix(&dotted) {
                let Some((n, field)) = rest.split_once('.') else {
                    continue;
                };
                let n = list_index(prefix, k, n)?;
                items.entry(n).or_default().insert(field.to_string(), v.clone());
            }
        }
        Ok(items.into_values().collect())
    }

    /// A JSON-string parameter holding an object.
    pub fn json(&self, name: &str) -> Result<Option<Json>, WireError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Some(Json { param: name.to_string(), map })),
            _ => Err(WireError::invalid(name, "must be a JSON object")),
        }
    }

    /// `PageNumber` / `PageSize` (defaults 1 and 10, size at most 50).
    pub fn page(&self) -> Result<NumberedPage, WireError> {
        // Alibaba's PageNumber is a 32-bit Integer.
        let number = self.int("PageNumber")?.unwrap_or(1);
        if !(1..=i64::from(i32::MAX)).contains(&number) {
            return Err(WireError::invalid("PageNumber", format!("must be 1-{}", i32::MAX)));
        }
        let size = self.int("PageSize")?.unwrap_or(10);
        if !(1..=50).contains(&size) {
            return Err(WireError::invalid("PageSize", "must be 1-50"));
        }
        Ok(NumberedPage { number: number as u64, size: size as u64 })
    }

    /// `NextToken` / `MaxResults` (within `1..=max`, default `default`): keyset paging behind an opaque token.
    pub fn token_page(&self, default: u64, max: u64) -> Result<PageRequest, WireError> {
        let v = self.int("MaxResults")?.unwrap_or(default as i64);
        if v < 1 || v as u64 > max {
            return Err(WireError::invalid("MaxResults", format!("must be 1-{max}")));
        }
        let cursor = self.get("NextToken").map(decode_token).transpose()?;
        Ok(PageRequest::After { cursor, limit: v as u64 })
    }

    /// `DryRun`, whether declared Boolean or String (`"true"`).
    pub fn dry_run(&self) -> Result<bool, WireError> {
        Ok(self.bool("DryRun")?.unwrap_or(false))
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&String, &String)> {
        self.map.iter()
    }
}

/// The `N` of `Prefix.N…`: 1 to [`MAX_LIST_INDEX`].
fn list_index(prefix: &str, key: &str, n: &str) -> Result<u32, WireError> {
    match n.parse::<u32>() {
        Ok(n) if (1..=MAX_LIST_INDEX).contains(&n) => Ok(n),
        _ => Err(WireError::invalid(prefix, format!("{key}: N must be 1-{MAX_LIST_INDEX}"))),
    }
}

/// A `PageNumber`/`PageSize` request, echoed in responses.
#[derive(Debug, Clone, Copy)]
pub struct NumberedPage {
    pub number: u64,
    pub size: u64,
}

impl NumberedPage {
    pub fn request(&self) -> PageRequest {
        PageRequest::numbered(self.number, self.size)
    }
}

/// `NextToken` values: `ovt` + the hex of the store's cursor.
pub fn encode_token(cursor: Option<&Cursor>) -> String {
    cursor.map(|c| format!("ovt{}", hex::encode(c.0.as_bytes()))).unwrap_or_default()
}

fn decode_token(token: &str) -> Result<Cursor, WireError> {
    token
        .strip_prefix("ovt")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .map(Cursor)
        .ok_or_else(|| WireError::invalid("NextToken", "not a token this service issued"))
}

/// A parsed JSON-string parameter; numbers may arrive as JSON numbers or strings.
pub struct Json {
    param: String,
    map: Map<String, Value>,
}

impl Json {
    /// A flattened object (`Prefix.N.Object.Field=value`, as the SDKs send dual-tunnel options) read like a
    /// JSON-string parameter: `fields` are the object's own (`Field` -> value).
    pub fn of_fields(param: &str, fields: impl IntoIterator<Item = (String, String)>) -> Json {
        Json { param: param.to_string(), map: fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect() }
    }

    fn value(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().find_map(|k| self.map.get(*k)).filter(|v| !v.is_null())
    }

    pub fn str(&self, keys: &[&str]) -> Result<Option<String>, WireError> {
        match self.value(keys) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.chars().any(forbidden_char) => {
                Err(WireError::invalid(&self.param, format!("{} contains control characters", keys[0])))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(WireError::invalid(&self.param, format!("{} must be a string", keys[0]))),
        }
    }

    pub fn u32(&self, keys: &[&str]) -> Result<Option<u32>, WireError> {
        self.str(keys)?
            .map(|s| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| WireError::invalid(&self.param, format!("{} must be an integer", keys[0])))
            })
            .transpose()
    }

    pub fn bool(&self, keys: &[&str]) -> Result<Option<bool>, WireError> {
        self.str(keys)?
            .map(|s| match s.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(WireError::invalid(&self.param, format!("{} must be true or false", keys[0]))),
            })
            .transpose()
    }

    /// An enum value parsed with `parse`.
    pub fn parsed<T>(&self, keys: &[&str], parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, WireError> {
        self.str(keys)?
            .map(|s| {
                parse(&s).ok_or_else(|| WireError::invalid(&self.param, format!("{} {s} is not supported", keys[0])))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::parse(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn booleans_and_ints() {
        let ps = p(&[("A", "True"), ("B", "false"), ("C", "yes"), ("N", "12"), ("M", "x")]);
        assert_eq!(ps.bool("A").ok(), Some(Some(true)));
        assert_eq!(ps.bool("B").ok(), Some(Some(false)));
        assert!(ps.bool("C").is_err());
        assert_eq!(ps.bool("Z").ok(), Some(None));
        assert_eq!(ps.int("N").ok(), Some(Some(12)));
        assert!(ps.int("M").is_err());
    }

    #[test]
    fn flattened_lists() {
        let ps = p(&[
            ("ResourceId.2", "b"),
            ("ResourceId.1", "a"),
            ("ResourceId.10", "c"),
            ("Tag.1.Key", "k"),
            ("Tag.1.Value", ""),
            ("Tag.2.Key", "k2"),
        ]);
        assert_eq!(ps.list("ResourceId").ok(), Some(vec!["a".to_string(), "b".into(), "c".into()]));
        let tags = ps.objects("Tag").expect("objects");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].get("Value").map(String::as_str), Some(""));
        assert!(!tags[1].contains_key("Value"));
    }

    #[test]
    fn json_params_accept_numbers_as_strings() {
        let ps = p(&[("IkeConfig", r#"{"IkeLifetime":"3600","IkeVersion":"ikev2","X":1}"#), ("Bad", "[1]")]);
        let j = ps.json("IkeConfig").expect("ok").expect("present");
        assert_eq!(j.u32(&["IkeLifetime"]).ok(), Some(Some(3600)));
        assert_eq!(j.str(&["IkeVersion"]).ok(), Some(Some("ikev2".to_string())));
        assert!(ps.json("Bad").is_err());
    }

    fn refused(pairs: &[(&str, &str)]) -> WireError {
        match Params::parse(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()) {
            Ok(_) => panic!("accepted {pairs:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn hostile_parameters_are_refused() {
        let e = refused(&[("Action", "DescribeVpnGateways"), ("Action", "DeleteVpnGateway")]);
        assert_eq!((e.status, e.code.as_str()), (400, "InvalidParameter"));
        assert_eq!(refused(&[("VSwitchId", "vsw-\u{0}")]).code, "InvalidVSwitchId");
        assert_eq!(refused(&[("VSwitchId", "vsw-a b")]).code, "InvalidVSwitchId");
        assert_eq!(refused(&[("VSwitchId", &"a".repeat(129))]).code, "InvalidVSwitchId");
        assert_eq!(refused(&[("Description", "a\u{1}b")]).code, "InvalidDescription");
        assert_eq!(refused(&[("Description", "a\u{1b}[31m")]).code, "InvalidDescription");
        assert_eq!(refused(&[("Name", &"a".repeat(1025))]).code, "InvalidName");
        assert_eq!(refused(&[("Bad Name", "x")]).code, "InvalidParameter");
        assert_eq!(refused(&[("ResourceId.1", "<x>")]).code, "InvalidResourceId1");
        let many: Vec<(String, String)> = (0..=MAX_PARAMS).map(|i| (format!("P{i}"), "v".into())).collect();
        assert!(Params::parse(&many).is_err());
        // Documents may be long; descriptions may carry line breaks.
        let long = "x".repeat(60 * 1024);
        assert!(Params::parse(&[("IkeConfig".into(), long)]).is_ok());
        assert!(Params::parse(&[("Description".into(), "a\nb\tc".into())]).is_ok());
        // List indexes are bounded (a thousand tag filters once overflowed the store's statement).
        assert!(p(&[("Tag.100.Key", "k")]).objects("Tag").is_ok());
        assert!(refused_list(&[("Tag.101.Key", "k")]));
        assert!(refused_list(&[("Tag.0.Key", "k")]));
        assert!(p(&[("PageNumber", "9223372036854775807")]).page().is_err());
        assert!(p(&[("PageNumber", "2147483647")]).page().is_ok());
    }

    fn refused_list(pairs: &[(&str, &str)]) -> bool {
        p(pairs).objects("Tag").is_err()
    }

    #[test]
    fn paging_bounds() {
        assert!(p(&[("PageSize", "51")]).page().is_err());
        assert!(p(&[("PageNumber", "0")]).page().is_err());
        let pg = p(&[]).page().expect("defaults");
        assert_eq!((pg.number, pg.size), (1, 10));
        assert!(p(&[("MaxResults", "21")]).token_page(10, 20).is_err());
        assert!(p(&[("NextToken", "bogus")]).token_page(10, 20).is_err());
        let c = Cursor("42".into());
        let t = encode_token(Some(&c));
        let back = p(&[("NextToken", t.as_str())]).token_page(10, 20).expect("token");
        assert_eq!(back, PageRequest::After { cursor: Some(c), limit: 10 });
        assert_eq!(encode_token(None), "");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// `Name.N` lists come back in index order whatever order and numbering they were sent in; empty
            /// values are left out.
            #[test]
            fn flattened_lists_round_trip(
                items in proptest::collection::btree_map(1u32..=MAX_LIST_INDEX, "[A-Za-z0-9._:-]{0,8}", 0..8),
                seed in any::<u64>(),
            ) {
                let mut pairs: Vec<(String, String)> =
                    items.iter().map(|(n, v)| (format!("ResourceId.{n}"), v.clone())).collect();
                pairs.sort_by_key(|(k, _)| seed.wrapping_mul(k.len() as u64 + 7) ^ k.as_bytes()[k.len() - 1] as u64);
                let want: Vec<String> = items.values().filter(|v| !v.is_empty()).cloned().collect();
                prop_assert_eq!(Params::parse(&pairs).expect("valid").list("ResourceId").expect("a list"), want);
            }

            /// `Tag.N.Field` objects come back as the maps they were flattened from, in index order.
            #[test]
            fn flattened_objects_round_trip(
                objects in proptest::collection::btree_map(
                    1u32..=MAX_LIST_INDEX,
                    proptest::collection::btree_map("(Key|Value|Name|Mode)", "[a-zA-Z0-9 ./é中<>&-]{0,8}", 1..4),
                    0..6,
                ),
            ) {
                let pairs: Vec<(String, String)> = objects
                    .iter()
                    .flat_map(|(n, fields)| fields.iter().map(move |(f, v)| (format!("Tag.{n}.{f}"), v.clone())))
                    .collect();
                let want: Vec<BTreeMap<String, String>> = objects.into_values().collect();
                prop_assert_eq!(Params::parse(&pairs).expect("valid").objects("Tag").expect("objects"), want);
            }

            /// `NextToken` carries any store cursor there and back.
            #[test]
            fn next_tokens_round_trip(cursor in "[a-zA-Z0-9 é中-]{0,15}", limit in 1u64..=20) {
                let token = encode_token(Some(&Cursor(cursor.clone())));
                let limit_text = limit.to_string();
                let back = p(&[("NextToken", token.as_str()), ("MaxResults", limit_text.as_str())]).token_page(10, 20);
                prop_assert_eq!(back.expect("a token this service issued"), PageRequest::After {
                    cursor: Some(Cursor(cursor)),
                    limit,
                });
            }
        }
    }
}
