//! Users, user groups and access policies of password-authenticated VPN servers (reference 4.2.3, 4.2.4).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_control::clients::{GroupChanges, NewPolicy, NewUser, PolicyChanges, UserChanges};
use openvgw_core::model::{AccessPolicy, UserGroup, VpnUser};
use openvgw_core::{Field, PageRequest, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::HwError;
use crate::ops::{NoBody, NoContent, RequestIdOnly};
use crate::wire::{self, PageInfo};

/// Passwords may not repeat the last five.
const PASSWORD_HISTORY: usize = 5;
/// Password characters besides letters and digits (and the space).
const PASSWORD_SPECIAL: &str = "`~!@#$%^&*()-_=+\\|[{}];:'\",<.>/? ";
/// Names the service keeps for itself (compared without case).
const RESERVED_NAMES: &[&str] = &["link", "cascade", "securenat", "localbridge", "administrator"];

fn server_id<'a>(c: &'a Call) -> Result<&'a str, HwError> {
    c.path("vpn_server_id")
}

/// 4-32 letters, digits, `.`, `_`, `-`; a few names are reserved (`VPN.1317`).
fn user_name(v: &str) -> Result<(), HwError> {
    if !(4..=32).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(HwError::invalid("name: 4-32 letters, digits, '.', '_' or '-'"));
    }
    let lower = v.to_ascii_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str()) || lower.starts_with("l3sw_") {
        return Err(HwError::new(400, "VPN.1317", "The username is unavailable."));
    }
    Ok(())
}

/// Why a password is refused, in the reference's codes and batch causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordProblem {
    Length,
    Complexity,
    Characters,
    IsName,
}

fn password_problem(name: &str, p: &str) -> Option<PasswordProblem> {
    if !p.chars().all(|c| c.is_ascii_alphanumeric() || PASSWORD_SPECIAL.contains(c)) {
        return Some(PasswordProblem::Characters);
    }
    if !(8..=32).contains(&p.len()) {
        return Some(PasswordProblem::Length);
    }
    let kinds = [
        p.chars().any(|c| c.is_ascii_uppercase()),
        p.chars().any(|c| c.is_ascii_lowercase()),
        p.chars().any(|c| c.is_ascii_digit()),
        p.chars().any(|c| PASSWORD_SPECIAL.contains(c)),
    ];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Some(PasswordProblem::Complexity);
    }
    let reversed: String = name.chars().rev().collect();
    if p == name || p == reversed {
        return Some(PasswordProblem::IsName);
    }
    None
}

fn password(name: &str, p: &str) -> Result<Secret, HwError> {
    match password_problem(name, p) {
        None => Ok(Secret::new(p.to_string())),
        Some(PasswordProblem::Characters) => {
            Err(HwError::new(400, "VPN.1310", "The password contains invalid characters."))
        }
        Some(PasswordProblem::Length | PasswordProblem::Complexity) => {
            Err(HwError::new(400, "VPN.1308", "The password complexity does not meet requirements."))
        }
        Some(PasswordProblem::IsName) => {
            Err(HwError::new(400, "VPN.1309", "The password cannot be the username or the reverse of the username."))
        }
    }
}

fn description(v: &str) -> Result<(), HwError> {
    if v.chars().count() > 64 || v.chars().any(char::is_control) {
        return Err(HwError::invalid("description: at most 64 characters"));
    }
    Ok(())
}

/// `disable` (an address from the pool) or the first host of a /30 of the pool.
fn static_ip(v: &str) -> Result<Option<Ipv4Addr>, HwError> {
    if v == "disable" {
        return Ok(None);
    }
    let ip: Ipv4Addr =
        v.parse().map_err(|_| HwError::invalid(format!("static_ip {v} must be an IPv4 address or disable")))?;
    if u32::from(ip) % 4 != 1 {
        return Err(HwError::invalid(format!("static_ip {v} must be the first host address of a /30 block")));
    }
    Ok(Some(ip))
}

fn static_word(u: &VpnUser) -> String {
    u.static_ip.map(|a| a.to_string()).unwrap_or_else(|| "disable".into())
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateUser {
    pub name: String,
    pub password: String,
    pub description: Option<String>,
    pub user_group_id: Option<String>,
    pub static_ip: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBody {
    pub user: CreateUser,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Id {
    pub id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UserIdOnly {
    pub user: Id,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub user_group_id: String,
    pub user_group_name: String,
    pub static_ip: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UserShown {
    pub user: UserView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub total_count: u64,
    pub page_info: PageInfo,
    pub request_id: String,
}

impl Call<'_> {
    /// Every group of the server (there are at most 51).
    fn groups(&self) -> Result<Vec<UserGroup>, HwError> {
        let page =
            self.svc.list_groups(self.scope()?, server_id(self)?, &PageRequest::ALL).map_err(|e| self.core(e))?;
        Ok(page.items.into_iter().map(|(g, _)| g).collect())
    }
}

fn user_view(u: &VpnUser, groups: &[UserGroup]) -> UserView {
    let group = u.group_id.as_ref().and_then(|g| groups.iter().find(|x| x.id == *g));
    UserView {
        id: u.id.clone(),
        name: u.name.clone(),
        description: u.description.clone(),
        user_group_id: u.group_id.clone().unwrap_or_default(),
        user_group_name: group.map(|g| g.name.clone()).unwrap_or_default(),
        static_ip: static_word(u),
        created_at: wire::ts(u.created_at),
        updated_at: wire::ts(u.updated_at),
    }
}

pub fn create(c: &Call, body: CreateBody) -> Result<UserIdOnly, HwError> {
    let u = body.user;
    user_name(&u.name)?;
    let pw = password(&u.name, &u.password)?;
    let description_text = u.description.unwrap_or_default();
    description(&description_text)?;
    let static_ip = u.static_ip.as_deref().map(static_ip).transpose()?.flatten();
    let group_id = u.user_group_id.filter(|g| !g.is_empty());
    let new = NewUser { name: u.name, password: pw, description: description_text, group_id, static_ip };
    let mut created = c.svc.create_users(&c.ctx()?, server_id(c)?, vec![new]).map_err(|e| c.core(e))?;
    let user = created.pop().ok_or_else(HwError::internal)?;
    Ok(UserIdOnly { user: Id { id: user.id }, request_id: c.request_id() })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BatchUser {
    pub name: String,
    pub password: String,
    pub description: Option<String>,
    pub user_group_name: Option<String>,
    pub static_ip: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BatchCreateBody {
    pub users: Vec<BatchUser>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InvalidUser {
    pub name: String,
    pub description: String,
    pub user_group_name: String,
    pub static_ip: String,
    pub cause: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchCreated {
    pub invalid_users: Vec<InvalidUser>,
    pub request_id: String,
}

/// All users or none: when any user is refused, the answer lists every refused one with its cause and nothing is
/// created.
pub fn batch_create(c: &Call, body: BatchCreateBody) -> Result<BatchCreated, HwError> {
    if body.users.is_empty() {
        return Err(HwError::new(400, "VPN.1318", "User list is empty."));
    }
    let sid = server_id(c)?;
    let ctx = c.ctx()?;
    // A retry with the same token answers as the first run did (its users now exist, which would read as
    // duplicates below).
    if c.svc.replayed::<Vec<VpnUser>>(&ctx).map_err(|e| c.core(e))?.is_some() {
        return Ok(BatchCreated { invalid_users: vec![], request_id: c.request_id() });
    }
    let groups = c.groups()?;
    let existing = c.svc.list_users(c.scope()?, sid, None, &PageRequest::ALL).map_err(|e| c.core(e))?;
    let mut invalid = Vec::new();
    let mut new = Vec::with_capacity(body.users.len());
    let mut seen_names: Vec<&str> = Vec::new();
    let mut seen_ips: Vec<Ipv4Addr> = Vec::new();
    for u in &body.users {
        let group = u.user_group_name.as_deref().filter(|n| !n.is_empty());
        let group_id = group.map(|n| groups.iter().find(|g| g.name == n).map(|g| g.id.clone()));
        let ip = u.static_ip.as_deref().map(static_ip);
        let cause = if user_name(&u.name).is_err() {
            Some("Invalid user name.")
        } else if seen_names.contains(&u.name.as_str()) || existing.items.iter().any(|e| e.name == u.name) {
            Some("Duplicate user name.")
        } else if let Some(p) = password_problem(&u.name, &u.password) {
            Some(match p {
                PasswordProblem::Length => "Password length invalid.",
                PasswordProblem::Complexity => "Password complexity invalid.",
                PasswordProblem::Characters => "Password contains invalid characters.",
                PasswordProblem::IsName => "Password cannot be the username or the reverse of the username.",
            })
        } else if u.description.as_deref().is_some_and(|d| description(d).is_err()) {
            Some("Invalid description.")
        } else if group_id.as_ref().is_some_and(Option::is_none) {
            Some("User group does not exist.")
        } else if matches!(ip, Some(Err(_))) {
            Some("Invalid static IP.")
        } else if let Some(Ok(Some(a))) = ip {
            if seen_ips.contains(&a) || existing.items.iter().any(|e| e.static_ip == Some(a)) {
                Some("Duplicate static IP.")
            } else {
                seen_ips.push(a);
                None
            }
        } else {
            None
        };
        seen_names.push(&u.name);
        match cause {
            Some(cause) => invalid.push(InvalidUser {
                name: u.name.clone(),
                description: u.description.clone().unwrap_or_default(),
                user_group_name: u.user_group_name.clone().unwrap_or_default(),
                static_ip: u.static_ip.clone().unwrap_or_else(|| "disable".into()),
                cause: cause.to_string(),
            }),
            None => new.push(NewUser {
                name: u.name.clone(),
                password: Secret::new(u.password.clone()),
                description: u.description.clone().unwrap_or_default(),
                group_id: group_id.flatten(),
                static_ip: ip.and_then(Result::ok).flatten(),
            }),
        }
    }
    if invalid.is_empty() {
        c.svc.create_users(&ctx, sid, new).map_err(|e| c.core(e))?;
    }
    Ok(BatchCreated { invalid_users: invalid, request_id: c.request_id() })
}

pub fn show(c: &Call, _: NoBody) -> Result<UserShown, HwError> {
    let u = c.svc.get_user(c.scope()?, server_id(c)?, c.path("user_id")?).map_err(|e| c.core(e))?;
    Ok(UserShown { user: user_view(&u, &c.groups()?), request_id: c.request_id() })
}

pub fn list(c: &Call, _: NoBody) -> Result<UserList, HwError> {
    let page = c.marker_page(200, 200)?;
    let listed = c.svc.list_users(c.scope()?, server_id(c)?, None, &page).map_err(|e| c.core(e))?;
    let groups = c.groups()?;
    Ok(UserList {
        page_info: PageInfo::of(&listed),
        total_count: listed.total,
        users: listed.items.iter().map(|u| user_view(u, &groups)).collect(),
        request_id: c.request_id(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateUser {
    pub description: Option<String>,
    pub user_group_id: Option<String>,
    pub static_ip: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBody {
    pub user: UpdateUser,
}

pub fn update(c: &Call, body: UpdateBody) -> Result<UserShown, HwError> {
    let u = body.user;
    if let Some(d) = &u.description {
        description(d)?;
    }
    let changes = UserChanges {
        description: u.description,
        // An empty id takes the user out of its group.
        group_id: u.user_group_id.map(|g| Some(g).filter(|g| !g.is_empty())),
        static_ip: u.static_ip.as_deref().map(static_ip).transpose()?,
    };
    let user = c.svc.update_user(&c.ctx()?, server_id(c)?, c.path("user_id")?, changes).map_err(|e| c.core(e))?;
    Ok(UserShown { user: user_view(&user, &c.groups()?), request_id: c.request_id() })
}

pub fn delete(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    c.svc.delete_users(&c.ctx()?, server_id(c)?, &[c.path("user_id")?.to_string()]).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UserRef {
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UserRefsBody {
    pub users: Vec<UserRef>,
}

/// The ids of a user list: not empty (`VPN.1318`), none twice (`VPN.1315`).
fn user_ids(body: UserRefsBody) -> Result<Vec<String>, HwError> {
    if body.users.is_empty() {
        return Err(HwError::new(400, "VPN.1318", "User list is empty."));
    }
    let mut ids: Vec<String> = Vec::with_capacity(body.users.len());
    for u in body.users {
        if ids.contains(&u.id) {
            return Err(HwError::new(400, "VPN.1315", format!("Duplicate user {}.", u.id)));
        }
        ids.push(u.id);
    }
    Ok(ids)
}

pub fn batch_delete(c: &Call, body: UserRefsBody) -> Result<RequestIdOnly, HwError> {
    let ids = user_ids(body)?;
    c.svc.delete_users(&c.ctx()?, server_id(c)?, &ids).map_err(|e| c.core(e))?;
    Ok(RequestIdOnly { request_id: c.request_id() })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PasswordBody {
    pub old_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResetBody {
    pub new_password: String,
}

fn set_password(c: &Call, old: Option<Secret>, new: &str) -> Result<RequestIdOnly, HwError> {
    let sid = server_id(c)?;
    let id = c.path("user_id")?;
    let user = c.svc.get_user(c.scope()?, sid, id).map_err(|e| c.core(e))?;
    let new = password(&user.name, new)?;
    c.svc.set_user_password(&c.ctx()?, sid, id, old.as_ref(), &new, PASSWORD_HISTORY).map_err(|e| c.core(e))?;
    Ok(RequestIdOnly { request_id: c.request_id() })
}

pub fn change_password(c: &Call, body: PasswordBody) -> Result<RequestIdOnly, HwError> {
    set_password(c, Some(Secret::new(body.old_password)), &body.new_password)
}

pub fn reset_password(c: &Call, body: ResetBody) -> Result<RequestIdOnly, HwError> {
    set_password(c, None, &body.new_password)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GroupCreate {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GroupCreateBody {
    pub user_group: GroupCreate,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GroupUpdateBody {
    pub user_group: GroupUpdate,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GroupIdOnly {
    pub user_group: Id,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub user_number: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GroupShown {
    pub user_group: GroupView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GroupList {
    pub user_groups: Vec<GroupView>,
    pub total_count: u64,
    pub page_info: PageInfo,
    pub request_id: String,
}

fn group_view(g: &UserGroup, members: u64) -> GroupView {
    GroupView {
        id: g.id.clone(),
        name: g.name.clone(),
        description: g.description.clone(),
        kind: if g.builtin { "Default" } else { "Custom" },
        user_number: members,
        created_at: wire::ts(g.created_at),
        updated_at: wire::ts(g.updated_at),
    }
}

/// Group names: 1-64 characters without control characters (the reference allows letters, Chinese, digits and
/// most punctuation).
fn group_name(v: &str) -> Result<(), HwError> {
    if !(1..=64).contains(&v.chars().count()) || v.chars().any(|c| c.is_control() || c == ' ') {
        return Err(HwError::invalid("name: 1-64 characters without spaces"));
    }
    Ok(())
}

pub fn create_group(c: &Call, body: GroupCreateBody) -> Result<GroupIdOnly, HwError> {
    let g = body.user_group;
    wire::name_of(&g.name, 1, 64, "_-", Field::Name)?;
    let d = g.description.unwrap_or_default();
    description(&d)?;
    let group = c.svc.create_group(&c.ctx()?, server_id(c)?, &g.name, &d).map_err(|e| c.core(e))?;
    Ok(GroupIdOnly { user_group: Id { id: group.id }, request_id: c.request_id() })
}

pub fn show_group(c: &Call, _: NoBody) -> Result<GroupShown, HwError> {
    let (g, n) = c.svc.get_group(c.scope()?, server_id(c)?, c.path("group_id")?).map_err(|e| c.core(e))?;
    Ok(GroupShown { user_group: group_view(&g, n), request_id: c.request_id() })
}

pub fn list_groups(c: &Call, _: NoBody) -> Result<GroupList, HwError> {
    let page = c.marker_page(200, 200)?;
    let listed = c.svc.list_groups(c.scope()?, server_id(c)?, &page).map_err(|e| c.core(e))?;
    Ok(GroupList {
        page_info: PageInfo::of(&listed),
        total_count: listed.total,
        user_groups: listed.items.iter().map(|(g, n)| group_view(g, *n)).collect(),
        request_id: c.request_id(),
    })
}

pub fn update_group(c: &Call, body: GroupUpdateBody) -> Result<GroupShown, HwError> {
    let g = body.user_group;
    if let Some(n) = &g.name {
        group_name(n)?;
    }
    if let Some(d) = &g.description {
        description(d)?;
    }
    let changes = GroupChanges { name: g.name, description: g.description };
    let (group, n) =
        c.svc.update_group(&c.ctx()?, server_id(c)?, c.path("group_id")?, changes).map_err(|e| c.core(e))?;
    Ok(GroupShown { user_group: group_view(&group, n), request_id: c.request_id() })
}

pub fn delete_group(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    c.svc.delete_group(&c.ctx()?, server_id(c)?, c.path("group_id")?).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

pub fn add_to_group(c: &Call, body: UserRefsBody) -> Result<RequestIdOnly, HwError> {
    let ids = user_ids(body)?;
    c.svc.add_to_group(&c.ctx()?, server_id(c)?, c.path("group_id")?, &ids).map_err(|e| c.core(e))?;
    Ok(RequestIdOnly { request_id: c.request_id() })
}

pub fn remove_from_group(c: &Call, body: UserRefsBody) -> Result<RequestIdOnly, HwError> {
    let ids = user_ids(body)?;
    let sid = server_id(c)?;
    let group = c.path("group_id")?;
    // The reference names the user that is not a member.
    for id in &ids {
        let u = c.svc.get_user(c.scope()?, sid, id).map_err(|e| c.core(e))?;
        if u.group_id.as_deref() != Some(group) {
            c.svc.get_group(c.scope()?, sid, group).map_err(|e| c.core(e))?;
            return Err(HwError::new(
                400,
                "VPN.1305",
                format!("The user {} is not in the current user group.", u.name),
            ));
        }
    }
    c.svc.remove_from_group(&c.ctx()?, sid, group, &ids).map_err(|e| c.core(e))?;
    Ok(RequestIdOnly { request_id: c.request_id() })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MemberList {
    pub users: Vec<Member>,
    pub total_count: u64,
    pub page_info: PageInfo,
    pub request_id: String,
}

pub fn list_in_group(c: &Call, _: NoBody) -> Result<MemberList, HwError> {
    let page = c.marker_page(200, 200)?;
    let listed =
        c.svc.list_users(c.scope()?, server_id(c)?, Some(c.path("group_id")?), &page).map_err(|e| c.core(e))?;
    Ok(MemberList {
        page_info: PageInfo::of(&listed),
        total_count: listed.total,
        users: listed
            .items
            .iter()
            .map(|u| Member { id: u.id.clone(), name: u.name.clone(), description: u.description.clone() })
            .collect(),
        request_id: c.request_id(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyCreate {
    pub name: String,
    pub user_group_id: String,
    pub description: Option<String>,
    pub dest_ip_cidrs: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyCreateBody {
    pub access_policy: PolicyCreate,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyUpdate {
    pub name: Option<String>,
    pub user_group_id: Option<String>,
    pub description: Option<String>,
    pub dest_ip_cidrs: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyUpdateBody {
    pub access_policy: PolicyUpdate,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyIdOnly {
    pub access_policy: Id,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub user_group_id: String,
    pub user_group_name: String,
    pub description: String,
    pub dest_ip_cidrs: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyShown {
    pub access_policy: PolicyView,
    pub request_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyList {
    pub access_policies: Vec<PolicyView>,
    pub total_count: u64,
    pub page_info: PageInfo,
    pub request_id: String,
}

fn policy_view(p: &AccessPolicy, group_name: &str) -> PolicyView {
    PolicyView {
        id: p.id.clone(),
        name: p.name.clone(),
        kind: "Custom",
        user_group_id: p.group_id.clone(),
        user_group_name: group_name.to_string(),
        description: p.description.clone(),
        dest_ip_cidrs: p.dest_cidrs.iter().map(ToString::to_string).collect(),
        created_at: wire::ts(p.created_at),
        updated_at: wire::ts(p.updated_at),
    }
}

/// 1-10 distinct usable CIDR blocks (`VPN.1402`-`VPN.1405`).
fn dest_cidrs(values: &[String]) -> Result<Vec<Ipv4Net>, HwError> {
    if values.is_empty() {
        return Err(HwError::invalid("dest_ip_cidrs: at least one CIDR block"));
    }
    if values.len() > 10 {
        return Err(HwError::new(400, "VPN.1402", "The number of destination CIDR blocks exceeds the upper limit."));
    }
    let mut out: Vec<Ipv4Net> = Vec::with_capacity(values.len());
    for v in values {
        let net = v
            .parse::<Ipv4Net>()
            .map(|n| n.trunc())
            .map_err(|_| HwError::new(400, "VPN.1403", format!("The destination CIDR block {v} is invalid.")))?;
        let unusable = ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"]
            .iter()
            .filter_map(|r| r.parse::<Ipv4Net>().ok())
            .any(|r| openvgw_core::validate::overlaps(&net, &r));
        if unusable {
            return Err(HwError::new(400, "VPN.1405", format!("The destination CIDR block {v} is unavailable.")));
        }
        if out.contains(&net) {
            return Err(HwError::new(400, "VPN.1404", format!("Duplicate destination CIDR block {v}")));
        }
        out.push(net);
    }
    Ok(out)
}

fn policy_name(v: &str) -> Result<(), HwError> {
    wire::name_of(v, 1, 64, "_-.", Field::Name)
}

pub fn create_policy(c: &Call, body: PolicyCreateBody) -> Result<PolicyIdOnly, HwError> {
    let p = body.access_policy;
    policy_name(&p.name)?;
    let d = p.description.unwrap_or_default();
    description(&d)?;
    let new = NewPolicy {
        name: p.name,
        group_id: p.user_group_id,
        description: d,
        dest_cidrs: dest_cidrs(&p.dest_ip_cidrs)?,
    };
    let policy = c.svc.create_policy(&c.ctx()?, server_id(c)?, new).map_err(|e| c.core(e))?;
    Ok(PolicyIdOnly { access_policy: Id { id: policy.id }, request_id: c.request_id() })
}

pub fn show_policy(c: &Call, _: NoBody) -> Result<PolicyShown, HwError> {
    let (p, g) = c.svc.get_policy(c.scope()?, server_id(c)?, c.path("policy_id")?).map_err(|e| c.core(e))?;
    Ok(PolicyShown { access_policy: policy_view(&p, &g), request_id: c.request_id() })
}

pub fn list_policies(c: &Call, _: NoBody) -> Result<PolicyList, HwError> {
    let page = c.marker_page(200, 200)?;
    let listed = c.svc.list_policies(c.scope()?, server_id(c)?, &page).map_err(|e| c.core(e))?;
    Ok(PolicyList {
        page_info: PageInfo::of(&listed),
        total_count: listed.total,
        access_policies: listed.items.iter().map(|(p, g)| policy_view(p, g)).collect(),
        request_id: c.request_id(),
    })
}

pub fn update_policy(c: &Call, body: PolicyUpdateBody) -> Result<PolicyShown, HwError> {
    let p = body.access_policy;
    if let Some(n) = &p.name {
        policy_name(n)?;
    }
    if let Some(d) = &p.description {
        description(d)?;
    }
    let changes = PolicyChanges {
        name: p.name,
        group_id: p.user_group_id,
        description: p.description,
        dest_cidrs: p.dest_ip_cidrs.as_deref().map(dest_cidrs).transpose()?,
    };
    let (policy, g) =
        c.svc.update_policy(&c.ctx()?, server_id(c)?, c.path("policy_id")?, changes).map_err(|e| c.core(e))?;
    Ok(PolicyShown { access_policy: policy_view(&policy, &g), request_id: c.request_id() })
}

pub fn delete_policy(c: &Call, _: NoBody) -> Result<NoContent, HwError> {
    c.svc.delete_policy(&c.ctx()?, server_id(c)?, c.path("policy_id")?).map_err(|e| c.core(e))?;
    Ok(NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert_eq!(password_problem("alice", "Qwerasdf"), None, "the reference's example");
        assert_eq!(password_problem("alice", "qwerasdf"), Some(PasswordProblem::Complexity));
        assert_eq!(password_problem("alice", "Qw1"), Some(PasswordProblem::Length));
        assert_eq!(password_problem("alice", "Qwerasdf\u{e9}"), Some(PasswordProblem::Characters));
        assert_eq!(password_problem("Alice123", "321ecilA"), Some(PasswordProblem::IsName));
        assert_eq!(password_problem("Alice123", "Alice123"), Some(PasswordProblem::IsName));
        assert_eq!(password(&"x".repeat(4), "abc").map_err(|e| e.code).err().as_deref(), Some("VPN.1308"));
    }

    #[test]
    fn names_and_addresses() {
        assert!(user_name("alice.b-1").is_ok());
        assert!(user_name("abc").is_err());
        assert_eq!(user_name("Administrator").map_err(|e| e.code).err().as_deref(), Some("VPN.1317"));
        assert_eq!(static_ip("disable").ok(), Some(None));
        assert!(static_ip("192.168.10.5").is_ok());
        assert!(static_ip("192.168.10.6").is_err(), "not the first host of its /30");
        assert_eq!(
            dest_cidrs(&["10.0.0.0/8".into(), "10.0.0.0/8".into()]).map_err(|e| e.code).err().as_deref(),
            Some("VPN.1404")
        );
        assert_eq!(dest_cidrs(&["x".into()]).map_err(|e| e.code).err().as_deref(), Some("VPN.1403"));
        let many: Vec<String> = (0..11).map(|i| format!("10.{i}.0.0/16")).collect();
        assert_eq!(dest_cidrs(&many).map_err(|e| e.code).err().as_deref(), Some("VPN.1402"));
    }
}
