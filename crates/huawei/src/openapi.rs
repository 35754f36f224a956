//! The OpenAPI 3.1 description of this dialect, generated from the operation list and the handlers' request and
//! response types (so it cannot drift from what is served). `openvgw serve` serves it at `/openapi/huawei.json`;
//! a test keeps the copy in `docs/openapi/huawei.json` current.

use serde_json::{json, Map, Value};

use crate::ops::{self, Op};

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    // Inline every schema: many handler types share short names (`Created`, `Listed`) across modules, and
    // operation-scoped inline schemas cannot collide.
    let mut settings = schemars::generate::SchemaSettings::openapi3();
    settings.inline_subschemas = true;
    let mut g = settings.into_generator();
    let described = ops::schemas(&mut g);
    let mut paths: Map<String, Value> = Map::new();
    for (op, request, response) in described {
        let mut operation = json!({
            "operationId": op.name(),
            "tags": [match op.family() {
                ops::Family::S2c => "site-to-cloud",
                ops::Family::P2c => "client-to-site",
                ops::Family::Iam => "iam",
            }],
            "parameters": path_parameters(op.path()),
            "responses": {},
        });
        if let Some(schema) = request {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        let status = op.status().to_string();
        operation["responses"][&status] = if op.status() == 204 {
            json!({"description": "No Content"})
        } else {
            json!({"description": "Success", "content": {"application/json": {"schema": response}}})
        };
        operation["responses"]["default"] = json!({
            "description": "An error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        });
        if !op.anonymous() {
            operation["security"] = json!([{"aksk": []}, {"token": []}]);
        }
        let item = paths.entry(op.path().to_string()).or_insert_with(|| json!({}));
        item[op.method().to_ascii_lowercase()] = operation;
    }
    let mut schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error_code", "error_msg", "request_id"],
            "properties": {
                "error_code": {"type": "string", "examples": ["VPN.0001"]},
                "error_msg": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "openvgw: Huawei Cloud VPN v5 dialect",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Huawei Cloud VPN (enterprise edition) REST API v5 as openvgw serves it, plus the IAM sign-in and project lookup.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "aksk": {"type": "apiKey", "in": "header", "name": "Authorization",
                         "description": "SDK-HMAC-SHA256 signature (X-Sdk-Date, SignedHeaders)"},
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
            },
        },
    })
}

/// How many operations the document describes.
pub fn operation_count() -> usize {
    Op::ALL.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_described_and_the_checked_in_copy_is_current() {
        let doc = document();
        let mut count = 0;
        for (_, item) in doc["paths"].as_object().expect("paths") {
            count += item.as_object().expect("path item").len();
        }
        assert_eq!(count, operation_count());
        for op in Op::ALL {
            let o = &doc["paths"][op.path()][op.method().to_ascii_lowercase()];
            assert_eq!(o["operationId"], op.name());
            assert!(o["responses"][op.status().to_string()].is_object(), "{}", op.name());
        }
        let text = serde_json::to_string_pretty(&doc).expect("serialises") + "\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi/huawei.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, &text).expect("write");
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == text,
            "docs/openapi/huawei.json is stale: run `UPDATE_OPENAPI=1 cargo test -p openvgw-huawei`"
        );
    }
}
