//! The web console's principals and sessions: operators (created by `openvgw admin operator`, passwords stored as
//! argon2id hashes) and signed-in sessions (stored as SHA-256 digests of their cookies, with their CSRF token), in
//! the store so that every replica honours them and a restart signs nobody out.

use openvgw_core::ids::{random_secret, random_token};
use openvgw_core::model::{ConsolePrincipal, ConsoleSession, Operator};
use openvgw_core::{now_ms, Error, Field, Result, Rule, Secret};
use openvgw_store::Store;

use crate::iam::{digest, hash_password, verify_password};
use crate::Service;

/// A session lasts 8 hours from sign-in (a working day), then its cookie is refused.
pub const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;

/// Constant-time equality of two secrets' bytes (their lengths are not secret).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_operator_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(Field::Name, Rule::Length { min: 1, max: 64 }))
    }
}

/// Creates an operator with a generated password, returned once (operator command; works while `serve` runs).
pub fn create_operator(store: &Store, name: &str) -> Result<Secret> {
    check_operator_name(name)?;
    let password = random_token(24);
    let operator = Operator { name: name.to_string(), password_hash: hash_password(&password)?, created_at: now_ms() };
    store.write(|tx| tx.insert_operator(&operator))?;
    Ok(Secret::new(password))
}

/// A new session: the cookie's value (shown to the browser once) and what is stored of it.
pub struct NewSession {
    pub cookie: Secret,
    pub session: ConsoleSession,
}

impl Service {
    fn open_session(&self, principal: ConsolePrincipal) -> Result<NewSession> {
        let cookie = random_secret(43);
        let now = now_ms();
        let session = ConsoleSession {
            digest: digest(&cookie),
            principal,
            csrf: random_secret(43),
            issued_at: now,
            expires_at: now + SESSION_TTL_MS,
        };
        self.store.write(|tx| {
            tx.purge_console_sessions(now)?;
            tx.insert_console_session(&session)
        })?;
        Ok(NewSession { cookie: Secret::new(cookie), session })
    }

    /// Signs a tenant in with one of its access key pairs; `None` when the pair is wrong or the tenant disabled (the
    /// caller must not tell which).
    pub fn console_sign_in_with_key(&self, access_key_id: &str, secret: &str) -> Result<Option<NewSession>> {
        let Some(known) = self.access_key(access_key_id)? else { return Ok(None) };
        if known.tenant_disabled || !same_secret(known.key.secret.expose(), secret) {
            return Ok(None);
        }
        let principal =
            ConsolePrincipal::Tenant { tenant_id: known.key.tenant_id.clone(), access_key_id: known.key.id.clone() };
        self.open_session(principal).map(Some)
    }

    /// Signs an operator in; `None` when the name or password is wrong.
    pub fn console_sign_in_operator(&self, name: &str, password: &str) -> Result<Option<NewSession>> {
        let Some(operator) = self.store.read(|tx| tx.operator(name))? else {
            // Spend the same effort as a real check, so timing does not reveal which names exist.
            let _ = verify_password(&Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$AAAA"), password);
            return Ok(None);
        };
        if !verify_password(&operator.password_hash, password) {
            return Ok(None);
        }
        self.open_session(ConsolePrincipal::Operator { name: operator.name }).map(Some)
    }

    /// The live session a cookie stands for: unexpired, and its principal still allowed in (the access key exists and
    /// its tenant is enabled; the operator exists). Checked on every request, so revoking takes effect at once.
    pub fn console_session(&self, cookie: &str) -> Result<Option<ConsoleSession>> {
        let Some(session) = self.store.read(|tx| tx.console_session(&digest(cookie)))? else { return Ok(None) };
        if session.expires_at <= now_ms() {
            return Ok(None);
        }
        let allowed = match &session.principal {
            ConsolePrincipal::Tenant { access_key_id, tenant_id } => {
                self.access_key(access_key_id)?.is_some_and(|k| !k.tenant_disabled && k.key.tenant_id == *tenant_id)
            }
            ConsolePrincipal::Operator { name } => self.store.read(|tx| tx.operator(name))?.is_some(),
        };
        Ok(allowed.then_some(session))
    }

    /// The scope a resource lives in, whatever its tenant (the console checks the principal against it).
    pub fn scope_of<R: openvgw_core::model::Resource>(&self, id: &str) -> Result<Option<openvgw_core::model::Scope>> {
        self.store.read(|tx| Ok(tx.get_unscoped::<R>(id)?.map(|r| r.scope().clone())))
    }

    pub fn console_sign_out(&self, cookie: &str) -> Result<()> {
        self.store.write(|tx| tx.delete_console_session(&digest(cookie)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab") && !same_secret("", "a"));
    }

    #[test]
    fn operator_names_are_short_words() {
        assert!(check_operator_name("ops.team-1_a").is_ok());
        for bad in ["", "has space", "semi;colon", &"x".repeat(65), "<script>"] {
            assert!(check_operator_name(bad).is_err(), "{bad}");
        }
    }
}
