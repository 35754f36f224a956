//! Users who sign in with a password (token auth), and the tokens issued to them. Passwords are stored as argon2id
//! hashes, tokens as SHA-256 digests: a copy of the database yields neither.

use openvgw_core::ids::random_secret;
use openvgw_core::model::{IamUser, Token};
use openvgw_core::{now_ms, Error, IdStyle, Kind, Result, Secret};
use openvgw_store::Store;
use sha2::{Digest, Sha256};

use crate::Service;

/// Tokens are valid 24 hours, as the vendor documents.
pub const TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;

pub use openvgw_core::password::{hash as hash_password, verify as verify_password};

/// How tokens and console sessions are stored: hex SHA-256 of their value.
pub(crate) fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a user of `tenant_id` (operator command; works while `serve` runs).
pub fn create_iam_user(store: &Store, tenant_id: &str, name: &str, password: &str) -> Result<IamUser> {
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(Error::invalid(openvgw_core::Field::Name, openvgw_core::Rule::Length { min: 1, max: 64 }));
    }
    if password.len() < 8 || password.len() > 128 {
        return Err(Error::invalid(openvgw_core::Field::Psk, openvgw_core::Rule::Length { min: 8, max: 128 }));
    }
    let user = IamUser {
        id: Kind::Tenant.new_id(IdStyle::Uuid).replace('-', ""),
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        password_hash: hash_password(password)?,
        created_at: now_ms(),
    };
    store.write(|tx| {
        tx.tenant(tenant_id)?.ok_or_else(|| Error::not_found(Kind::Tenant, tenant_id))?;
        tx.insert_iam_user(&user)
    })?;
    Ok(user)
}

/// A freshly issued token (shown once) with its record.
pub struct Issued {
    pub token: Secret,
    pub record: Token,
    pub user: IamUser,
}

impl Service {
    /// Signs `user` of the tenant named `domain` in for `region`; `None` when the name, password or tenant is wrong
    /// (the caller must not tell which).
    pub fn issue_token(&self, domain: &str, user: &str, password: &str, region: &str) -> Result<Option<Issued>> {
        let found = self.store.read(|tx| {
            // A disabled tenant's users cannot sign in (as if the tenant did not exist).
            let Some(tenant) = tx.tenant_by_name(domain)?.filter(|t| !t.disabled) else {
                return Ok(None);
            };
            tx.iam_user(&tenant.id, user)
        })?;
        let Some(user) = found else {
            // Spend the same effort as a real check, so timing does not reveal which names exist.
            let _ = verify_password(&Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$AAAA"), password);
            return Ok(None);
        };
        if !verify_password(&user.password_hash, password) {
            return Ok(None);
        }
        let token = format!("MII{}", random_secret(180));
        let now = now_ms();
        let record = Token {
            digest: digest(&token),
            tenant_id: user.tenant_id.clone(),
            user_id: user.id.clone(),
            region: region.to_string(),
            issued_at: now,
            expires_at: now + TOKEN_TTL_MS,
        };
        self.store.write(|tx| {
            tx.purge_tokens(now)?;
            tx.insert_token(&record)
        })?;
        Ok(Some(Issued { token: Secret::new(token), record, user }))
    }

    /// The live token record for `token`, if any and if its tenant is enabled (one store read of each per call).
    pub fn token(&self, token: &str) -> Result<Option<Token>> {
        self.store.read(|tx| {
            let Some(t) = tx.token(&digest(token))?.filter(|t| t.expires_at > now_ms()) else { return Ok(None) };
            Ok(tx.tenant(&t.tenant_id)?.is_some_and(|tenant| !tenant.disabled).then_some(t))
        })
    }
}
