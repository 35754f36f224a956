//! The two IAM calls the VPN tools need: password sign-in for a project-scoped token (`POST /v3/auth/tokens`,
//! the token comes back in `X-Subject-Token`), and the project lookup the SDK makes to find a region's project id
//! (`GET /v3/projects?name=<region>`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ops::NoBody;
use crate::wire;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TokenBody {
    pub auth: Auth,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Auth {
    pub identity: Identity,
    pub scope: Option<Scope>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Identity {
    pub methods: Vec<String>,
    pub password: Option<PasswordIdentity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PasswordIdentity {
    pub user: UserRef,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UserRef {
    pub name: String,
    pub password: String,
    pub domain: NameRef,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NameRef {
    pub name: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Scope {
    pub project: Option<NameRef>,
    pub domain: Option<NameRef>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DomainView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectRef {
    pub id: String,
    pub name: String,
    pub domain: DomainView,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub domain: DomainView,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenView {
    pub expires_at: String,
    pub issued_at: String,
    pub methods: Vec<&'static str>,
    pub project: ProjectRef,
    pub user: UserView,
    pub catalog: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenIssued {
    pub token: TokenView,
}

fn wrong_credentials() -> HwError {
    HwError::new(401, "IAM.0004", "The username or password is wrong.")
}

/// Password sign-in, scoped to one project (a region of the tenant); the token is valid 24 hours.
pub fn create_token(c: &Call, body: TokenBody) -> Result<TokenIssued, HwError> {
    let a = body.auth;
    if !a.identity.methods.iter().any(|m| m == "password") {
        return Err(HwError::new(400, "IAM.0011", "Request body is invalid: only the password method is supported."));
    }
    let user = a.identity.password.ok_or_else(|| HwError::new(400, "IAM.0011", "Request body is invalid."))?.user;
    let domain =
        user.domain.name.clone().ok_or_else(|| {
            HwError::new(400, "IAM.0011", "Request body is invalid: the user's domain name is required.")
        })?;
    let scope = a.scope.ok_or_else(|| HwError::new(400, "IAM.0011", "Request body is invalid: scope is required."))?;
    let project = match (scope.project, scope.domain) {
        (Some(p), _) => p,
        (None, Some(_)) => {
            return Err(HwError::new(
                400,
                "IAM.0011",
                "Request body is invalid: VPN needs a project-scoped token, not a domain-scoped one.",
            ))
        }
        (None, None) => {
            return Err(HwError::new(400, "IAM.0011", "Request body is invalid: scope.project is required."))
        }
    };
    let regions = &c.svc.config().regions.huawei;
    // A project is named after its region; by id it must be one of the tenant's projects.
    let tenant = c.svc.tenant_by_name(&domain).map_err(|e| c.core(e))?;
    let region = match (&project.name, &project.id, &tenant) {
        (Some(name), _, _) => regions.iter().find(|r| *r == name).cloned(),
        (None, Some(id), Some(t)) => t.region_of_project(id).map(str::to_string),
        _ => None,
    };
    let Some(region) = region.filter(|r| regions.contains(r)) else {
        return Err(wrong_credentials());
    };
    let issued = c
        .svc
        .issue_token(&domain, &user.name, &user.password, &region)
        .map_err(|e| c.core(e))?
        .ok_or_else(wrong_credentials)?;
    let tenant = tenant.ok_or_else(wrong_credentials)?;
    let project_id = tenant.projects.get(&region).cloned().unwrap_or_default();
    let domain_view = || DomainView { id: tenant.id.clone(), name: tenant.name.clone() };
    c.set_header("x-subject-token", issued.token.expose().to_string());
    Ok(TokenIssued {
        token: TokenView {
            expires_at: wire::ts(issued.record.expires_at),
            issued_at: wire::ts(issued.record.issued_at),
            methods: vec!["password"],
            project: ProjectRef { id: project_id, name: region, domain: domain_view() },
            user: UserView { id: issued.user.id.clone(), name: issued.user.name.clone(), domain: domain_view() },
            catalog: vec![],
        },
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Links {
    pub next: Option<String>,
    pub previous: Option<String>,
    #[serde(rename = "self")]
    pub this: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectView {
    pub domain_id: String,
    pub is_domain: bool,
    pub parent_id: String,
    pub name: String,
    pub description: String,
    pub links: Links,
    pub id: String,
    pub enabled: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Projects {
    pub projects: Vec<ProjectView>,
    pub links: Links,
}

/// The caller's projects (one per region this deployment serves for Huawei), optionally by name.
pub fn list_projects(c: &Call, _: NoBody) -> Result<Projects, HwError> {
    let principal = c.principal.ok_or_else(HwError::internal)?;
    let tenant =
        c.svc.tenant(&principal.tenant_id).map_err(|e| c.core(e))?.ok_or_else(|| {
            HwError::new(401, "APIGW.0301", "Incorrect IAM authentication information: unknown account")
        })?;
    let name = c.query("name");
    let regions = &c.svc.config().regions.huawei;
    let projects = tenant
        .projects
        .iter()
        .filter(|(region, _)| regions.contains(region) && name.is_none_or(|n| n == region.as_str()))
        .filter(|(region, _)| match &principal.via {
            openvgw_api::Credential::Token { region: r, .. } => r == *region,
            openvgw_api::Credential::AccessKey(_) => true,
        })
        .map(|(region, id)| ProjectView {
            domain_id: tenant.id.clone(),
            is_domain: false,
            parent_id: tenant.id.clone(),
            name: region.clone(),
            description: String::new(),
            links: Links { next: None, previous: None, this: format!("/v3/projects/{id}") },
            id: id.clone(),
            enabled: true,
        })
        .collect();
    Ok(Projects { projects, links: Links { next: None, previous: None, this: "/v3/projects".into() } })
}
