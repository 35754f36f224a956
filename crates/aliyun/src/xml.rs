//! The XML form of a response (`Format=XML`): the same document as the JSON one.

use serde_json::{Map, Value};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A literal CR would be read back as LF (XML end-of-line handling).
            '\r' => out.push_str("&#xD;"),
            // XML 1.0 cannot carry these even as character references; requests cannot store them, but a
            // document must stay parseable whatever it holds.
            c if openvgw_core::validate::forbidden_char(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn xml_value(out: &mut String, name: &str, v: &Value) {
    match v {
        // An array is a sequence of elements named like its key (the SDK's XML convention).
        Value::Array(items) => {
            for item in items {
                xml_value(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            xml_fields(out, map);
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn xml_fields(out: &mut String, map: &Map<String, Value>) {
    for (k, v) in map {
        xml_value(out, k, v);
    }
}

/// The XML document for a JSON body: `<{root}>…</{root}>`.
pub fn to_xml(root: &str, body: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    match body {
        Value::Object(map) => {
            out.push_str(&format!("<{root}>"));
            xml_fields(&mut out, map);
            out.push_str(&format!("</{root}>"));
        }
        other => xml_value(&mut out, root, other),
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn xml_shapes() {
        let body = json!({"RequestId": "R", "VpnGateways": {"VpnGateway": [{"Name": "a&b"}, {"Name": "c"}]}, "N": 3, "B": true});
        let xml = to_xml("DescribeVpnGatewaysResponse", &body);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeVpnGatewaysResponse>"));
        assert!(xml.contains("<RequestId>R</RequestId>"));
        assert!(xml.contains("<VpnGateways><VpnGateway><Name>a&amp;b</Name></VpnGateway><VpnGateway><Name>c</Name></VpnGateway></VpnGateways>"));
        assert!(xml.contains("<N>3</N>") && xml.contains("<B>true</B>"));
    }

    #[test]
    fn control_characters_never_reach_the_document() {
        let xml = to_xml("R", &json!({"Name": "a\u{1}b\u{1b}c\u{fffe}d\te"}));
        assert!(xml.contains("<Name>a\u{fffd}b\u{fffd}c\u{fffd}d\te</Name>"), "{xml}");
    }
}
