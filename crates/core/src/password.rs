//! Password hashes (argon2id, PHC strings): the service keeps hashes only, and whoever verifies a sign-in (the API
//! for IAM users, the data plane for VPN users) checks against the hash.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// An argon2id PHC string for `password`.
pub fn hash(password: &str) -> Result<Secret> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| Secret::new(h.to_string()))
        .map_err(|e| Error::internal(format!("password hashing: {e}")))
}

/// Whether `password` matches the stored hash (constant-time inside argon2).
pub fn verify(hash: &Secret, password: &str) -> bool {
    PasswordHash::new(hash.expose()).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash("Correct-Horse-9").expect("hash");
        assert!(h.expose().starts_with("$argon2id$"));
        assert!(!h.expose().contains("Correct-Horse-9"));
        assert!(verify(&h, "Correct-Horse-9"));
        assert!(!verify(&h, "correct-horse-9"));
        assert!(!verify(&Secret::new("garbage"), "x"));
    }
}
