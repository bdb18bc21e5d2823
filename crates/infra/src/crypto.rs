//! Password hashing (argon2id) and secret tokens (256 random bits, stored as SHA-256).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use skein_domain::DomainError;

/// argon2id with configurable cost (OWASP's minimum by default: 19 MiB, 2 passes).
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    params: Params,
    dummy_hash: OnceLockHash,
}

#[derive(Clone, Debug, Default)]
struct OnceLockHash(OnceLock<String>);

impl PasswordHasher {
    pub fn new(memory_kib: u32, passes: u32) -> Result<Self, DomainError> {
        let params = Params::new(memory_kib, passes, 1, None).map_err(|e| DomainError::Internal(e.to_string()))?;
        Ok(Self { params, dummy_hash: OnceLockHash::default() })
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash_blocking(&self, password: &str) -> Result<String, DomainError> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| DomainError::Internal(e.to_string()))?;
        self.argon()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    /// Checks `password` against `hash`; with no hash (unknown user) it still spends the time
    /// of one verification, so a caller cannot tell unknown emails from wrong passwords.
    pub fn verify_blocking(&self, password: &str, hash: Option<&str>) -> bool {
        match hash {
            Some(hash) => verify(password, hash),
            None => {
                let dummy = self.dummy_hash.0.get_or_init(|| self.hash_blocking("not a password").unwrap_or_default());
                verify(password, dummy);
                false
            }
        }
    }
}

/// Verifies with the parameters stored in the hash (they may predate a config change).
fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

pub fn fill_random(buf: &mut [u8]) {
    // The OS generator only fails on a broken system; refusing to continue is then right.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// 256 random bits, URL-safe.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
