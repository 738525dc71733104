//! The web UI's sign-in sessions (sign-in.md §2.5), held in the database so
//! that every instance knows a session another made and a restart signs
//! nobody out. The store keeps what it is given: keys are hashes of the
//! browser's tokens (a copy of the table lets nobody in), and the user is
//! the web UI's JSON, opaque here.

use jiff::Timestamp;

/// A signed-in user's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The hash of the cookie's token.
    pub key: String,
    /// The user as the web UI records them.
    pub user: String,
    pub created_at: Timestamp,
    /// The end of the session if no request comes before then: moved on by
    /// every request, never past `expires_at`.
    pub idle_until: Timestamp,
    /// The end of the session whatever happens.
    pub expires_at: Timestamp,
}

impl WebSession {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.idle_until && now < self.expires_at
    }
}

/// A sign-in on its way through the provider: what its callback must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The hash of the token in the browser's sign-in cookie.
    pub key: String,
    /// The web UI's record (state, nonce, PKCE verifier), opaque here.
    pub body: String,
    pub expires_at: Timestamp,
}

/// `now + by`, at most the last instant both backends can store (so that a
/// configured idle time of centuries is no error).
pub(crate) fn later(now: Timestamp, by: std::time::Duration) -> Timestamp {
    let last = Timestamp::from_nanosecond(i128::from(i64::MAX)).unwrap_or(Timestamp::MAX);
    jiff::SignedDuration::try_from(by)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .map_or(last, |t| t.min(last))
}
