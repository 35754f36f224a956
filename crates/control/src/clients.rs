//! Users, user groups, access policies and imported client CAs of client-to-site servers.
//!
//! These change what a server's data plane lets in, so each change bumps the gateway's generation — without
//! waiting for an idle gateway: the reconciler applies whatever is newest, and scripts that create many users in a
//! row must not trip over their own previous change.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::model::{
    AccessPolicy, CertificateInfo, ClientAuth, ClientCa, GatewayStatus, Index, Scope, SslVpnServer, UserGroup,
    VpnGateway, VpnUser,
};
use openvgw_core::{
    now_ms, password, Error, Field, Kind, Page, PageRequest, Precondition, Quota, Result, Rule, Secret,
};
use openvgw_store::{ListQuery, Tx};

use crate::{quota, Ctx, Service};

/// A user to create; the password is hashed here and never stored in clear.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub password: Secret,
    pub description: String,
    pub group_id: Option<String>,
    pub static_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub description: Option<String>,
    /// `Some(None)` takes the user out of its group.
    pub group_id: Option<Option<String>>,
    /// `Some(None)` returns the user to a pool address.
    pub static_ip: Option<Option<Ipv4Addr>>,
}

#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewPolicy {
    pub name: String,
    pub group_id: String,
    pub description: String,
    pub dest_cidrs: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, Default)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub group_id: Option<String>,
    pub description: Option<String>,
    pub dest_cidrs: Option<Vec<Ipv4Net>>,
}

/// The server and its gateway, for a change to the server's clients.
fn server_for_change(tx: &Tx, scope: &Scope, server_id: &str) -> Result<(SslVpnServer, VpnGateway)> {
    let server: SslVpnServer = tx.require(scope, server_id)?;
    let gw: VpnGateway = tx.require(scope, &server.gateway_id)?;
    if gw.status() == GatewayStatus::Deleting {
        return Err(Error::GatewayBusy { id: gw.id, status: GatewayStatus::Deleting });
    }
    Ok((server, gw))
}

fn touch(tx: &Tx, mut gw: VpnGateway) -> Result<()> {
    gw.generation += 1;
    gw.updated_at = now_ms();
    tx.update(&gw)
}

fn pool_name(server_id: &str) -> String {
    format!("clients:{server_id}")
}

/// Client addresses are the first host of each /30 of the pool; the pool's first /30 is the server's own.
fn pool_addresses(pool: Ipv4Net) -> impl Iterator<Item = Ipv4Addr> {
    let base = u32::from(pool.network());
    let blocks = 1u64 << (32 - u32::from(pool.prefix_len())).saturating_sub(2);
    (1..blocks).filter_map(move |k| u32::try_from(k * 4 + 1).ok().map(|off| Ipv4Addr::from(base.wrapping_add(off))))
}

fn check_static_ip(server: &SslVpnServer, ip: Ipv4Addr) -> Result<()> {
    let pool = server.client_ip_pool;
    let server_ip = pool.hosts().next();
    if !pool.contains(&ip) || Some(ip) == server_ip || ip == pool.network() || ip == pool.broadcast() {
        return Err(Error::invalid(Field::StaticIp, Rule::NotInside(pool.to_string())));
    }
    Ok(())
}

fn claim_address(tx: &Tx, server: &SslVpnServer, user_id: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
    let pool = pool_name(&server.id);
    let got = match wanted {
        Some(ip) => {
            check_static_ip(server, ip)?;
            tx.claim_address(&pool, std::iter::once(ip.to_string()), user_id)?
                .ok_or(Error::invalid(Field::StaticIp, Rule::Duplicate))?
        }
        None => tx
            .claim_address(&pool, pool_addresses(server.client_ip_pool).map(|a| a.to_string()), user_id)?
            .ok_or(Error::PoolExhausted(openvgw_core::Pool::VpcAddresses))?,
    };
    got.parse().map_err(Error::internal)
}

fn group_of(tx: &Tx, scope: &Scope, server_id: &str, group_id: &str) -> Result<UserGroup> {
    let g: UserGroup = tx.require(scope, group_id)?;
    if g.server_id != server_id {
        return Err(Error::not_found(Kind::UserGroup, group_id));
    }
    Ok(g)
}

fn user_of(tx: &Tx, scope: &Scope, server_id: &str, user_id: &str) -> Result<VpnUser> {
    let u: VpnUser = tx.require(scope, user_id)?;
    if u.server_id != server_id {
        return Err(Error::not_found(Kind::VpnUser, user_id));
    }
    Ok(u)
}

fn require_password_server(server: &SslVpnServer) -> Result<()> {
    if server.client_auth == ClientAuth::Password {
        Ok(())
    } else {
        Err(Error::Precondition(Precondition::WrongClientAuth))
    }
}

/// Gives every user of a server an address in its (changed) pool: the static address a user asked for, which must
/// still fit, or the next free one.
pub(crate) fn readdress_users(tx: &Tx, scope: &Scope, server: &SslVpnServer) -> Result<()> {
    let users: Vec<VpnUser> = tx.all(&ListQuery::children_of(scope, &server.id))?;
    for u in &users {
        tx.release_addresses(&u.id)?;
    }
    for mut u in users {
        u.address = claim_address(tx, server, &u.id, u.static_ip)?;
        u.updated_at = now_ms();
        tx.update(&u)?;
    }
    Ok(())
}

/// Adds checked client CAs to a server within the per-server limit, refusing one that is there already.
pub(crate) fn insert_client_cas(
    tx: &Tx,
    ctx: &Ctx,
    server_id: &str,
    cas: &[(String, CertificateInfo)],
    limit: u64,
) -> Result<Vec<ClientCa>> {
    let mut existing: Vec<ClientCa> = tx.all(&ListQuery::children_of(&ctx.scope, server_id))?;
    let mut out = Vec::with_capacity(cas.len());
    for (name, cert) in cas {
        quota(existing.len() as u64, limit, Quota::ClientCas)?;
        if existing.iter().any(|c| c.certificate.pem == cert.pem) {
            return Err(Error::AlreadyExists { kind: Kind::ClientCa, what: name.clone() });
        }
        let now = now_ms();
        let ca = ClientCa {
            id: ctx.new_id(Kind::ClientCa),
            scope: ctx.scope.clone(),
            server_id: server_id.to_string(),
            name: name.clone(),
            certificate: cert.clone(),
            created_at: now,
            updated_at: now,
        };
        tx.insert(&ca)?;
        existing.push(ca.clone());
        out.push(ca);
    }
    Ok(out)
}

/// Switching how a server authenticates leaves no orphans: users, custom groups and policies only mean something
/// to password servers, imported CAs only to certificate servers; a certificate server needs at least one CA.
pub(crate) fn check_auth_switch(tx: &Tx, scope: &Scope, server: &SslVpnServer) -> Result<()> {
    let children = ListQuery::children_of(scope, &server.id);
    match server.client_auth {
        ClientAuth::Certificate => {
            if tx.count::<VpnUser>(&children)? > 0 {
                return Err(Error::InUse { kind: Kind::SslVpnServer, id: server.id.clone(), by: Kind::VpnUser });
            }
            if tx.all::<UserGroup>(&children)?.iter().any(|g| !g.builtin) {
                return Err(Error::InUse { kind: Kind::SslVpnServer, id: server.id.clone(), by: Kind::UserGroup });
            }
            if tx.count::<AccessPolicy>(&children)? > 0 {
                return Err(Error::InUse { kind: Kind::SslVpnServer, id: server.id.clone(), by: Kind::AccessPolicy });
            }
            if tx.count::<ClientCa>(&children)? == 0 {
                return Err(Error::invalid(Field::ClientCa, Rule::Required));
            }
        }
        ClientAuth::Password => {
            if tx.count::<ClientCa>(&children)? > 0 {
                return Err(Error::InUse { kind: Kind::SslVpnServer, id: server.id.clone(), by: Kind::ClientCa });
            }
        }
    }
    Ok(())
}

impl Service {
    /// Creates users in one transaction: all of them, or none.
    pub fn create_users(&self, ctx: &Ctx, server_id: &str, users: Vec<NewUser>) -> Result<Vec<VpnUser>> {
        // Hash outside the transaction: argon2 is deliberately slow.
        let hashed =
            users.into_iter().map(|u| Ok((password::hash(u.password.expose())?, u))).collect::<Result<Vec<_>>>()?;
        self.mutate(ctx, |tx| {
            let (server, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            require_password_server(&server)?;
            let children = ListQuery::children_of(&ctx.scope, server_id);
            let existing = tx.count::<VpnUser>(&children)?;
            let mut out = Vec::with_capacity(hashed.len());
            for (hash, u) in &hashed {
                quota(existing + out.len() as u64, u64::from(gw.ssl_max_connections), Quota::VpnUsers)?;
                let same_name = ListQuery { name: Some(&u.name), ..children.clone() };
                if tx.count::<VpnUser>(&same_name)? > 0 {
                    return Err(Error::AlreadyExists { kind: Kind::VpnUser, what: u.name.clone() });
                }
                if let Some(g) = &u.group_id {
                    group_of(tx, &ctx.scope, server_id, g)?;
                }
                let id = ctx.new_id(Kind::VpnUser);
                let address = claim_address(tx, &server, &id, u.static_ip)?;
                let now = now_ms();
                let user = VpnUser {
                    id,
                    scope: ctx.scope.clone(),
                    server_id: server_id.to_string(),
                    name: u.name.clone(),
                    description: u.description.clone(),
                    password_hash: hash.clone(),
                    password_history: vec![],
                    group_id: u.group_id.clone(),
                    static_ip: u.static_ip,
                    address,
                    created_at: now,
                    updated_at: now,
                };
                tx.insert(&user)?;
                out.push(user);
            }
            touch(tx, gw)?;
            Ok(out)
        })
    }

    pub fn get_user(&self, scope: &Scope, server_id: &str, id: &str) -> Result<VpnUser> {
        self.read(|tx| {
            tx.require::<SslVpnServer>(scope, server_id)?;
            user_of(tx, scope, server_id, id)
        })
    }

    /// Users of a server, optionally only the members of one group.
    pub fn list_users(
        &self,
        scope: &Scope,
        server_id: &str,
        group_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<VpnUser>> {
        self.read(|tx| {
            tx.require::<SslVpnServer>(scope, server_id)?;
            let mut q = ListQuery::children_of(scope, server_id);
            if let Some(g) = group_id {
                group_of(tx, scope, server_id, g)?;
                q.keys.push((Index::UserGroup, g.to_string()));
            }
            tx.list(&q, page)
        })
    }

    pub fn update_user(&self, ctx: &Ctx, server_id: &str, id: &str, ch: UserChanges) -> Result<VpnUser> {
        self.mutate(ctx, |tx| {
            let (server, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            let mut user = user_of(tx, &ctx.scope, server_id, id)?;
            if let Some(d) = &ch.description {
                user.description = d.clone();
            }
            if let Some(g) = &ch.group_id {
                if let Some(g) = g {
                    group_of(tx, &ctx.scope, server_id, g)?;
                }
                user.group_id = g.clone();
            }
            if let Some(ip) = ch.static_ip {
                if ip != user.static_ip {
                    tx.release_addresses(&user.id)?;
                    user.address = claim_address(tx, &server, &user.id, ip)?;
                    user.static_ip = ip;
                }
            }
            user.updated_at = now_ms();
            tx.update(&user)?;
            touch(tx, gw)?;
            Ok(user)
        })
    }

    /// Deletes users (all or none); their live sessions end when the gateway applies the change.
    pub fn delete_users(&self, ctx: &Ctx, server_id: &str, ids: &[String]) -> Result<()> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            for id in ids {
                user_of(tx, &ctx.scope, server_id, id)?;
                tx.delete_tree(Kind::VpnUser, id)?;
            }
            touch(tx, gw)
        })
    }

    /// Sets a user's password: `old` must match when given (a change by the user; a reset gives none), and the new
    /// password may not repeat the current one or the last `history` ones.
    pub fn set_user_password(
        &self,
        ctx: &Ctx,
        server_id: &str,
        id: &str,
        old: Option<&Secret>,
        new: &Secret,
        history: usize,
    ) -> Result<()> {
        let current = self.read(|tx| user_of(tx, &ctx.scope, server_id, id))?;
        if let Some(old) = old {
            if !password::verify(&current.password_hash, old.expose()) {
                return Err(Error::Precondition(Precondition::WrongPassword));
            }
        }
        let recent = std::iter::once(&current.password_hash).chain(current.password_history.iter().take(history));
        if recent.clone().any(|h| password::verify(h, new.expose())) {
            return Err(Error::Precondition(Precondition::PasswordReused));
        }
        let hash = password::hash(new.expose())?;
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            let mut user = user_of(tx, &ctx.scope, server_id, id)?;
            if user.password_hash != current.password_hash {
                // Changed by someone else meanwhile: the checks above no longer hold.
                return Err(Error::GatewayBusy { status: gw.status(), id: gw.id });
            }
            let previous = std::mem::replace(&mut user.password_hash, hash.clone());
            user.password_history.insert(0, previous);
            user.password_history.truncate(history.max(1));
            user.updated_at = now_ms();
            tx.update(&user)?;
            touch(tx, gw)
        })
    }

    pub fn create_group(&self, ctx: &Ctx, server_id: &str, name: &str, description: &str) -> Result<UserGroup> {
        self.mutate(ctx, |tx| {
            let (server, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            require_password_server(&server)?;
            let children = ListQuery::children_of(&ctx.scope, server_id);
            let custom = tx.all::<UserGroup>(&children)?.iter().filter(|g| !g.builtin).count() as u64;
            quota(custom, self.config.quotas.user_groups_per_server, Quota::UserGroups)?;
            if tx.count::<UserGroup>(&ListQuery { name: Some(name), ..children })? > 0 {
                return Err(Error::AlreadyExists { kind: Kind::UserGroup, what: name.to_string() });
            }
            let now = now_ms();
            let group = UserGroup {
                id: ctx.new_id(Kind::UserGroup),
                scope: ctx.scope.clone(),
                server_id: server_id.to_string(),
                name: name.to_string(),
                description: description.to_string(),
                builtin: false,
                created_at: now,
                updated_at: now,
            };
            tx.insert(&group)?;
            touch(tx, gw)?;
            Ok(group)
        })
    }

    pub fn get_group(&self, scope: &Scope, server_id: &str, id: &str) -> Result<(UserGroup, u64)> {
        self.read(|tx| {
            tx.require::<SslVpnServer>(scope, server_id)?;
            let g = group_of(tx, scope, server_id, id)?;
            let members = tx.count::<VpnUser>(&ListQuery::children_of(scope, server_id).key(Index::UserGroup, id))?;
            Ok((g, members))
        })
    }

    /// Groups of a server with their member counts.
    pub fn list_groups(&self, scope: &Scope, server_id: &str, page: &PageRequest) -> Result<Page<(UserGroup, u64)>> {
        self.read(|tx| {
            tx.require::<SslVpnServer>(scope, server_id)?;
            tx.list::<UserGroup>(&ListQuery::children_of(scope, server_id), page)?.try_map(|g| {
                let n =
                    tx.count::<VpnUser>(&ListQuery::children_of(scope, server_id).key(Index::UserGroup, g.id.clone()))?;
                Ok((g, n))
            })
        })
    }

    pub fn update_group(&self, ctx: &Ctx, server_id: &str, id: &str, ch: GroupChanges) -> Result<(UserGroup, u64)> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            let mut g = group_of(tx, &ctx.scope, server_id, id)?;
            if g.builtin {
                return Err(Error::Precondition(Precondition::BuiltinGroup));
            }
            if let Some(n) = &ch.name {
                let same = ListQuery { name: Some(n), ..ListQuery::children_of(&ctx.scope, server_id) };
                if *n != g.name && tx.count::<UserGroup>(&same)? > 0 {
                    return Err(Error::AlreadyExists { kind: Kind::UserGroup, what: n.clone() });
                }
                g.name = n.clone();
            }
            if let Some(d) = &ch.description {
                g.description = d.clone();
            }
            g.updated_at = now_ms();
            tx.update(&g)?;
            touch(tx, gw)?;
            let members =
                tx.count::<VpnUser>(&ListQuery::children_of(&ctx.scope, server_id).key(Index::UserGroup, id))?;
            Ok((g, members))
        })
    }

    /// Deletes a group no policy refers to; its members stay, without a group (and so without access).
    pub fn delete_group(&self, ctx: &Ctx, server_id: &str, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            let g = group_of(tx, &ctx.scope, server_id, id)?;
            if g.builtin {
                return Err(Error::Precondition(Precondition::BuiltinGroup));
            }
            let by_group = ListQuery::children_of(&ctx.scope, server_id).key(Index::UserGroup, id);
            if tx.count::<AccessPolicy>(&by_group)? > 0 {
                return Err(Error::InUse { kind: Kind::UserGroup, id: id.to_string(), by: Kind::AccessPolicy });
            }
            for mut u in tx.all::<VpnUser>(&by_group)? {
                u.group_id = None;
                u.updated_at = now_ms();
                tx.update(&u)?;
            }
            tx.delete_tree(Kind::UserGroup, id)?;
            touch(tx, gw)
        })
    }

    /// Puts users into a group (all or none); a user already in another group is refused, one already in this
    /// group is left as is.
    pub fn add_to_group(&self, ctx: &Ctx, server_id: &str, group_id: &str, user_ids: &[String]) -> Result<()> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            group_of(tx, &ctx.scope, server_id, group_id)?;
            for uid in user_ids {
                let mut u = user_of(tx, &ctx.scope, server_id, uid)?;
                match u.group_id.as_deref() {
                    Some(g) if g == group_id => continue,
                    Some(_) => {
                        return Err(Error::InUse { kind: Kind::VpnUser, id: u.name.clone(), by: Kind::UserGroup });
                    }
                    None => {}
                }
                u.group_id = Some(group_id.to_string());
                u.updated_at = now_ms();
                tx.update(&u)?;
            }
            touch(tx, gw)
        })
    }

    /// Takes users out of a group (all or none); each must be a member.
    pub fn remove_from_group(&self, ctx: &Ctx, server_id: &str, group_id: &str, user_ids: &[String]) -> Result<()> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            group_of(tx, &ctx.scope, server_id, group_id)?;
            for uid in user_ids {
                let mut u = user_of(tx, &ctx.scope, server_id, uid)?;
                if u.group_id.as_deref() != Some(group_id) {
                    return Err(Error::invalid(Field::UserGroup, Rule::NotApplicable));
                }
                u.group_id = None;
                u.updated_at = now_ms();
                tx.update(&u)?;
            }
            touch(tx, gw)
        })
    }

    pub fn create_policy(&self, ctx: &Ctx, server_id: &str, p: NewPolicy) -> Result<AccessPolicy> {
        self.mutate(ctx, |tx| {
            let (server, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            require_password_server(&server)?;
            let children = ListQuery::children_of(&ctx.scope, server_id);
            quota(
                tx.count::<AccessPolicy>(&children)?,
                self.config.quotas.access_policies_per_server,
                Quota::AccessPolicies,
            )?;
            group_of(tx, &ctx.scope, server_id, &p.group_id)?;
            let now = now_ms();
            let policy = AccessPolicy {
                id: ctx.new_id(Kind::AccessPolicy),
                scope: ctx.scope.clone(),
                server_id: server_id.to_string(),
                group_id: p.group_id.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
                dest_cidrs: p.dest_cidrs.clone(),
                created_at: now,
                updated_at: now,
            };
            tx.insert(&policy)?;
            touch(tx, gw)?;
            Ok(policy)
        })
    }

    fn policy_of(tx: &Tx, scope: &Scope, server_id: &str, id: &str) -> Result<AccessPolicy> {
        let p: AccessPolicy = tx.require(scope, id)?;
        if p.server_id != server_id {
            return Err(Error::not_found(Kind::AccessPolicy, id));
        }
        Ok(p)
    }

    /// A policy with its group's name.
    pub fn get_policy(&self, scope: &Scope, server_id: &str, id: &str) -> Result<(AccessPolicy, String)> {
        self.read(|tx| {
            tx.require::<SslVpnServer>(scope, server_id)?;
            let p = Self::policy_of(tx, scope, server_id, id)?;
            let g: Option<UserGroup> = tx.get(scope, &p.group_id)?;
            Ok((p, g.map(|g| g.name).unwrap_or_default()))
        })
    }

    pub fn list_policies(
        &self,
        scope: &Scope,
        server_id: &str,
        page: &PageRequest,
    ) -> Result<Page<(AccessPolicy, String)>> {
        self.read(|tx| {
            tx.require::<SslVpnServer>(scope, server_id)?;
            tx.list::<AccessPolicy>(&ListQuery::children_of(scope, server_id), page)?.try_map(|p| {
                let g: Option<UserGroup> = tx.get(scope, &p.group_id)?;
                Ok((p, g.map(|g| g.name).unwrap_or_default()))
            })
        })
    }

    pub fn update_policy(
        &self,
        ctx: &Ctx,
        server_id: &str,
        id: &str,
        ch: PolicyChanges,
    ) -> Result<(AccessPolicy, String)> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            let mut p = Self::policy_of(tx, &ctx.scope, server_id, id)?;
            if let Some(n) = &ch.name {
                p.name = n.clone();
            }
            if let Some(g) = &ch.group_id {
                group_of(tx, &ctx.scope, server_id, g)?;
                p.group_id = g.clone();
            }
            if let Some(d) = &ch.description {
                p.description = d.clone();
            }
            if let Some(c) = &ch.dest_cidrs {
                p.dest_cidrs = c.clone();
            }
            p.updated_at = now_ms();
            tx.update(&p)?;
            touch(tx, gw)?;
            let g: Option<UserGroup> = tx.get(&ctx.scope, &p.group_id)?;
            Ok((p, g.map(|g| g.name).unwrap_or_default()))
        })
    }

    pub fn delete_policy(&self, ctx: &Ctx, server_id: &str, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            Self::policy_of(tx, &ctx.scope, server_id, id)?;
            tx.delete_tree(Kind::AccessPolicy, id)?;
            touch(tx, gw)
        })
    }

    /// Adds a trusted client CA (already checked by the dialect) to a certificate server.
    pub fn import_client_ca(&self, ctx: &Ctx, server_id: &str, name: &str, cert: CertificateInfo) -> Result<ClientCa> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            let cas = [(name.to_string(), cert.clone())];
            let mut added = insert_client_cas(tx, ctx, server_id, &cas, self.config.quotas.client_cas_per_server)?;
            touch(tx, gw)?;
            added.pop().ok_or_else(|| Error::internal("no client CA added"))
        })
    }

    fn client_ca_of(tx: &Tx, scope: &Scope, server_id: &str, id: &str) -> Result<ClientCa> {
        tx.require::<SslVpnServer>(scope, server_id)?;
        let c: ClientCa = tx.require(scope, id)?;
        if c.server_id != server_id {
            return Err(Error::not_found(Kind::ClientCa, id));
        }
        Ok(c)
    }

    pub fn get_client_ca(&self, scope: &Scope, server_id: &str, id: &str) -> Result<ClientCa> {
        self.read(|tx| Self::client_ca_of(tx, scope, server_id, id))
    }

    pub fn list_client_cas(&self, scope: &Scope, server_id: &str) -> Result<Vec<ClientCa>> {
        self.read(|tx| tx.all(&ListQuery::children_of(scope, server_id)))
    }

    /// Renames a client CA: nothing the data plane uses changes.
    pub fn rename_client_ca(&self, ctx: &Ctx, server_id: &str, id: &str, name: &str) -> Result<ClientCa> {
        self.mutate(ctx, |tx| {
            let mut c = Self::client_ca_of(tx, &ctx.scope, server_id, id)?;
            c.name = name.to_string();
            c.updated_at = now_ms();
            tx.update(&c)?;
            Ok(c)
        })
    }

    /// Removes a client CA. Removing the last one of a certificate server is allowed: it then admits no client,
    /// and is how such a server is emptied before it switches to passwords.
    pub fn delete_client_ca(&self, ctx: &Ctx, server_id: &str, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            let (_, gw) = server_for_change(tx, &ctx.scope, server_id)?;
            Self::client_ca_of(tx, &ctx.scope, server_id, id)?;
            tx.delete_tree(Kind::ClientCa, id)?;
            touch(tx, gw)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_skip_the_servers_block() {
        let pool: Ipv4Net = "192.168.0.0/24".parse().expect("net");
        let a: Vec<Ipv4Addr> = pool_addresses(pool).take(3).collect();
        assert_eq!(a, ["192.168.0.5", "192.168.0.9", "192.168.0.13"].map(|s| s.parse::<Ipv4Addr>().expect("ip")));
        assert_eq!(pool_addresses(pool).count(), 63);
        assert_eq!(pool_addresses(pool).last(), Some("192.168.0.253".parse().expect("ip")));
    }
}
