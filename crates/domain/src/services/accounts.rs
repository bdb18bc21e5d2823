use skein_shared::ErrorCode;
use skein_shared::UserId;
use skein_shared::auth::{AuthResponse, LoginRequest, RegisterRequest, User};
use ulid::Ulid;

use super::Services;
use crate::entities::{NewSession, NewUser, Session};
use crate::ports::Ports;
use crate::validate::{Check, EMAIL_MAX_CHARS};
use crate::{DomainError, DomainResult};

impl<P: Ports> Services<P> {
    pub async fn register(&self, req: RegisterRequest) -> DomainResult<AuthResponse> {
        let mut check = Check::new();
        let email = check.email("email", &req.email);
        check.password("password", &req.password, self.limits.password_min_chars, &email);
        let display_name = check.text("display_name", &req.display_name, self.limits.display_name_max_chars);
        check.finish()?;

        // The very first account may always register: it is how an instance gets its admin.
        if !self.auth.open_registration && self.ports.any_user_exists().await? {
            return Err(DomainError::rule(ErrorCode::RegistrationClosed, "registration is closed on this instance"));
        }
        let password_hash = self.ports.hash_password(req.password).await?;
        let user =
            self.ports.create_user(NewUser { id: UserId::generate(), email, display_name, password_hash }).await?;
        self.start_session(user).await
    }

    /// Logs in. Attempts are counted per email (known or not) before the password is checked,
    /// and a success clears them; past the limit every attempt for that email is refused with
    /// `RateLimited` until the window moves on, so the answer never tells whether a guess was
    /// right.
    pub async fn login(&self, req: LoginRequest) -> DomainResult<AuthResponse> {
        let email = req.email.trim().to_lowercase();
        // No account has a longer address (register refuses them), so none is looked up.
        if email.chars().count() > EMAIL_MAX_CHARS {
            return Err(DomainError::field("email", "too_long", format!("at most {EMAIL_MAX_CHARS} characters")));
        }
        let now = self.ports.now();
        let window_start = now - self.auth.login_failure_window;
        let max = self.auth.login_max_failures;
        if let Some(oldest) = self.ports.begin_login_attempt(&email, window_start, max).await? {
            let frees_at = oldest + self.auth.login_failure_window;
            // Failures are stamped by the database's clock; the server's may be behind it.
            let window = self.auth.login_failure_window.whole_seconds().max(1);
            let retry_after_secs = (frees_at - now).whole_seconds().clamp(1, window) as u64;
            return Err(DomainError::RateLimited { retry_after_secs });
        }
        let credential = self.ports.find_credential(&email).await?;
        let hash = credential.as_ref().map(|c| c.password_hash.clone());
        let ok = self.ports.verify_password(req.password, hash).await?;
        match credential {
            // A disabled account's right password is answered as a wrong one (and stays
            // counted), so the answer confirms no guess.
            Some(c) if ok && !c.disabled => {
                self.ports.clear_login_failures(&email).await?;
                self.start_session(c.user).await
            }
            // The attempt was counted as a failure already.
            _ => Err(DomainError::InvalidCredentials),
        }
    }

    /// The session a token belongs to; `Unauthenticated` when it is unknown or expired.
    pub async fn authenticate(&self, token: &str) -> DomainResult<Session> {
        let digest = self.ports.digest(token);
        self.ports.find_session(&digest, self.auth.session_idle).await?.ok_or(DomainError::Unauthenticated)
    }

    /// Resolves when the session ends, on any instance, or expires (its streams end then).
    pub fn session_end(
        &self,
        session: &Session,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        self.ports.session_ended(session.id, session.expires_at)
    }

    /// Deletes expired sessions, stream tokens, old login failures and full rate-limit
    /// buckets (the server runs it periodically).
    pub async fn sweep_expired(&self) -> DomainResult<u64> {
        let failures_before = self.ports.now() - self.auth.login_failure_window;
        self.ports.sweep_expired(self.auth.session_idle, failures_before).await
    }

    pub async fn logout(&self, session: Ulid) -> DomainResult<()> {
        self.ports.revoke_session(session).await
    }

    async fn start_session(&self, user: User) -> DomainResult<AuthResponse> {
        let token = self.ports.new_secret();
        let csrf_token = self.ports.new_secret();
        let expires_at = self.ports.now() + self.auth.session_absolute;
        self.ports
            .create_session(NewSession {
                id: Ulid::generate(),
                user_id: user.id,
                token_digest: self.ports.digest(&token),
                csrf_token: csrf_token.clone(),
                expires_at,
            })
            .await?;
        Ok(AuthResponse { user, token, expires_at, csrf_token })
    }
}
