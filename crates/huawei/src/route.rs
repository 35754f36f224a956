//! Path routing: method + path template → operation, with path parameters. Where two templates match the same
//! path, the one with a literal segment where the other has a parameter wins, comparing from the last segment
//! (`GET /v5/{p}/vpn-connection/tags` is the tag list, not the connection named "tags").

use percent_encoding::percent_decode_str;

/// One route: method, path template (`{name}` for parameters), and what it leads to.
#[derive(Debug, Clone, Copy)]
pub struct Route<T: Copy> {
    pub method: &'static str,
    pub template: &'static str,
    pub target: T,
}

/// Path parameters by name.
#[derive(Debug, Clone, Default)]
pub struct PathParams(Vec<(&'static str, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// Every parameter, in path order.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

fn segments(path: &str) -> Vec<&str> {
    // A trailing `/` cannot be told apart in the signature, so it is accepted.
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    trimmed.strip_prefix('/').unwrap_or(trimmed).split('/').collect()
}

/// What matching a path found.
pub enum Matched<T> {
    Found(T, PathParams),
    /// The path exists, but not for this method.
    WrongMethod,
    NotFound,
}

pub fn find<T: Copy>(routes: &[Route<T>], method: &str, path: &str) -> Matched<T> {
    let parts = segments(path);
    let mut best: Option<(Vec<bool>, &Route<T>)> = None;
    let mut path_exists = false;
    for r in routes {
        let tpl = segments(r.template);
        if tpl.len() != parts.len() {
            continue;
        }
        let mut literals = Vec::with_capacity(tpl.len());
        let ok = tpl.iter().zip(&parts).all(|(t, p)| {
            let is_param = t.starts_with('{') && t.ends_with('}');
            literals.push(!is_param);
            is_param && !p.is_empty() || *t == *p
        });
        if !ok {
            continue;
        }
        path_exists = true;
        if r.method != method {
            continue;
        }
        // Compare from the last segment: a literal beats a parameter at the first difference.
        literals.reverse();
        if best.as_ref().is_none_or(|(b, _)| literals > *b) {
            best = Some((literals, r));
        }
    }
    match best {
        Some((_, r)) => {
            let mut params = Vec::new();
            for (t, p) in segments(r.template).iter().zip(&parts) {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    params.push((name, percent_decode_str(p).decode_utf8_lossy().into_owned()));
                }
            }
            Matched::Found(r.target, PathParams(params))
        }
        None if path_exists => Matched::WrongMethod,
        None => Matched::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &[Route<u8>] = &[
        Route { method: "GET", template: "/v5/{project_id}/vpn-connection/{vpn_connection_id}", target: 1 },
        Route { method: "GET", template: "/v5/{project_id}/{resource_type}/tags", target: 2 },
        Route { method: "GET", template: "/v5/{project_id}/vpn-gateways/{vgw_id}", target: 3 },
        Route { method: "GET", template: "/v5/{project_id}/vpn-gateways/availability-zones", target: 4 },
        Route { method: "DELETE", template: "/v5/{project_id}/vpn-gateways/{vgw_id}", target: 5 },
    ];

    fn hit(m: &str, p: &str) -> Option<(u8, PathParams)> {
        match find(R, m, p) {
            Matched::Found(t, params) => Some((t, params)),
            _ => None,
        }
    }

    #[test]
    fn literals_win_and_params_decode() {
        assert_eq!(hit("GET", "/v5/p1/vpn-connection/tags").map(|h| h.0), Some(2));
        let (t, params) = hit("GET", "/v5/p1/vpn-connection/abc%2Dd").expect("show");
        assert_eq!((t, params.get("vpn_connection_id")), (1, Some("abc-d")));
        assert_eq!(hit("GET", "/v5/p1/vpn-gateways/availability-zones").map(|h| h.0), Some(4));
        assert_eq!(hit("GET", "/v5/p1/vpn-gateways/g1/").map(|h| h.0), Some(3));
        assert!(matches!(find(R, "PUT", "/v5/p1/vpn-gateways/g1"), Matched::WrongMethod));
        assert!(matches!(find(R, "GET", "/v5/p1/nothing/here/at-all"), Matched::NotFound));
        assert!(matches!(find(R, "GET", "/v5//vpn-gateways/g1"), Matched::NotFound), "empty parameters do not match");
    }
}
