//! Who a client is, as the server's auth hook established it: a user id, an optional display
//! name and roles, and the claims the hook chose to keep. Plain data: the model only carries it
//! to the hooks that decide (permissions, validators, reactions) and never checks it itself.

use super::Value;
use compact_str::CompactString;

/// The identity of a connected client. Several connections (tabs, devices) of one user share
/// the user id; each is a client of its own with its own client id.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The user's id, as the application knows it (a database id, a token's `sub`).
    pub user: CompactString,
    /// A name to show others, if the application gives one.
    pub name: Option<CompactString>,
    /// Roles, for permission rules (e.g. `"admin"`).
    pub roles: Vec<CompactString>,
    /// Anything else the auth hook kept (a token's other claims, say); [`Value::Null`] if none.
    /// Stays on the server: clients are told the user id, name and roles only.
    pub claims: Value,
}

impl Identity {
    /// The identity of user `user`, without name, roles or claims.
    pub fn user(user: impl Into<CompactString>) -> Self {
        Identity { user: user.into(), name: None, roles: Vec::new(), claims: Value::Null }
    }

    /// With this display name.
    pub fn with_name(mut self, name: impl Into<CompactString>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With this role added.
    pub fn with_role(mut self, role: impl Into<CompactString>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// With these claims.
    pub fn with_claims(mut self, claims: Value) -> Self {
        self.claims = claims;
        self
    }

    /// Whether the identity has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
