//! [`JwtAuth`]: a ready auth hook for signed tokens (JWT), re-exported at the crate root.

use super::{AuthRequest, Grant};
use crate::model::{Identity, Value};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

#[derive(Clone)]
enum Keys {
    One(Arc<DecodingKey>, Algorithm),
    Set(Arc<JwkSet>),
}

/// A ready auth hook for signed tokens (JWT): HS256 with a shared secret, RS256 or ES256 with a
/// public key (PEM) or a JWKS file (keys chosen by the token's `kid`).
///
/// The token is taken from the `hello` token, else an `Authorization: Bearer` header, else a
/// `token` query parameter. Its claims:
///
/// | claim | meaning |
/// |---|---|
/// | `sub` | the user id (required) |
/// | `exp` | expiry, seconds since 1970 (required): the session is closed with 4006 then |
/// | `name` | display name shown to others |
/// | `roles` | array of role names, for permission rules |
/// | `rooms` | array of room names the token opens; a name ending in `*` is a prefix (`"team-*"`); absent: every room |
/// | `read_only` | `true`: the client may change nothing |
/// | `iss`, `aud` | checked when [`JwtAuth::issuer`] / [`JwtAuth::audience`] are set |
///
/// Every claim is kept in [`Identity::claims`](crate::model::Identity::claims) for the
/// application's hooks. A refused token closes the connection with 4001 and says why: no
/// token, a bad signature, expired, or a room it does not open.
///
/// ```no_run
/// use objectsync::JwtAuth;
/// # fn run(types: objectsync::model::TypeRegistry) -> Result<(), Box<dyn std::error::Error>> {
/// let jwt = JwtAuth::hs256(std::env::var("JWT_SECRET")?)?;
/// let server = objectsync::Server::builder(types).authorize_jwt(jwt).build()?;
/// # Ok(()) }
/// ```
///
/// Verifies JWTs and turns their claims into a [`Grant`]. Cheap to clone.
#[derive(Clone)]
pub struct JwtAuth {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

impl JwtAuth {
    fn with(keys: Keys) -> Self {
        JwtAuth { keys, issuer: None, audience: None, leeway_secs: 0 }
    }

    /// Tokens signed with HS256 and this shared secret (at least 32 bytes: a shorter one is
    /// refused, as it could be guessed).
    pub fn hs256(secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let secret = secret.as_ref();
        if secret.len() < 32 {
            return Err(KeyError(format!("an HS256 secret needs at least 32 bytes, not {}", secret.len())));
        }
        let key = DecodingKey::from_secret(secret).map_err(|e| KeyError(format!("unusable HS256 secret: {e}")))?;
        Ok(Self::with(Keys::One(Arc::new(key), Algorithm::HS256)))
    }

    /// Tokens signed with RS256, verified with this RSA public key (PEM).
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(|e| KeyError(format!("not an RSA public key in PEM: {e}")))?;
        Ok(Self::with(Keys::One(Arc::new(key), Algorithm::RS256)))
    }

    /// Tokens signed with ES256, verified with this P-256 public key (PEM).
    pub fn es256_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_ec_pem(pem).map_err(|e| KeyError(format!("not an EC public key in PEM: {e}")))?;
        Ok(Self::with(Keys::One(Arc::new(key), Algorithm::ES256)))
    }

    /// Tokens verified with the key of a JWKS document (`{"keys":[...]}`) named by their `kid`.
    pub fn jwks(json: &str) -> Result<Self, KeyError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| KeyError(format!("not a JWKS document: {e}")))?;
        if set.keys.is_empty() {
            return Err(KeyError("the JWKS document has no keys".into()));
        }
        Ok(Self::with(Keys::Set(Arc::new(set))))
    }

    /// Requires this `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Requires this `aud`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Accepts tokens this many seconds past `exp` (clock skew between issuer and server).
    pub fn leeway_secs(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// The grant of the request's token, or why there is none.
    pub fn verify(&self, req: &AuthRequest) -> Result<Grant, String> {
        let token = req
            .token
            .as_deref()
            .or_else(|| req.bearer())
            .or_else(|| req.query_param("token"))
            .ok_or("no token: send one in hello, an Authorization: Bearer header or ?token=")?;
        let (key, algorithm) = self.key_for(token)?;
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway_secs;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => "token expired".to_owned(),
                K::InvalidSignature => "invalid token: bad signature".to_owned(),
                _ => format!("invalid token: {e}"),
            }
        })?;
        grant_of(&data.claims, &req.room)
    }

    /// The key (borrowed when there is one, made from the JWKS entry otherwise) and its algorithm.
    fn key_for(&self, token: &str) -> Result<(Cow<'_, DecodingKey>, Algorithm), String> {
        match &self.keys {
            Keys::One(key, alg) => Ok((Cow::Borrowed(&**key), *alg)),
            Keys::Set(set) => {
                let header = jsonwebtoken::decode_header(token).map_err(|e| format!("invalid token: {e}"))?;
                let kid = header.kid.ok_or("invalid token: no kid to choose a key of the JWKS")?;
                let jwk = set.find(&kid).ok_or_else(|| format!("invalid token: no key {kid:?} in the JWKS"))?;
                // The algorithm is the key's, never the token's own say (a token naming HS256
                // must not get a public key used as an HMAC secret).
                let alg = match &jwk.algorithm {
                    AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    _ => return Err(format!("JWKS key {kid:?}: only RS256 and ES256 (P-256) keys are used")),
                };
                let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWKS key {kid:?}: {e}"))?;
                Ok((Cow::Owned(key), alg))
            }
        }
    }
}

/// The grant the claims give for `room`.
fn grant_of(claims: &serde_json::Value, room: &str) -> Result<Grant, String> {
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    let sub = text("sub").filter(|s| !s.is_empty()).ok_or("invalid token: sub must be a user id")?;
    if let Some(rooms) = claims.get("rooms") {
        let allowed = rooms
            .as_array()
            .ok_or("invalid token: rooms must be an array of names")?
            .iter()
            .filter_map(serde_json::Value::as_str)
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => room.starts_with(prefix),
                None => room == pattern,
            });
        if !allowed {
            return Err(format!("the token does not open room {room:?}"));
        }
    }
    let kept: Value = serde_json::from_value(claims.clone()).map_err(|e| format!("invalid token: claims: {e}"))?;
    let mut identity = Identity::user(sub).with_claims(kept);
    if let Some(name) = text("name") {
        identity = identity.with_name(name);
    }
    for role in claims.get("roles").and_then(serde_json::Value::as_array).into_iter().flatten() {
        if let Some(role) = role.as_str() {
            identity = identity.with_role(role);
        }
    }
    let exp = claims.get("exp").and_then(serde_json::Value::as_u64).ok_or("invalid token: exp must be a number")?;
    let read_only = claims.get("read_only").and_then(serde_json::Value::as_bool).unwrap_or(false);
    Ok(Grant::user(identity).read_only(read_only).expires_at(UNIX_EPOCH + Duration::from_secs(exp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: serde_json::Value) -> serde_json::Value {
        v
    }

    #[test]
    fn rooms_claim_opens_names_and_prefixes() {
        let c = claims(serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64, "rooms": ["lobby", "team-*"]}));
        assert!(grant_of(&c, "lobby").is_ok());
        assert!(grant_of(&c, "team-blue").is_ok());
        assert!(grant_of(&c, "lobby2").expect_err("no").contains("does not open"));
        let all = claims(serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}));
        assert!(grant_of(&all, "anything").is_ok());
    }

    #[test]
    fn claims_become_the_identity() {
        let c = claims(
            serde_json::json!({"sub": "bob", "exp": 4_000_000_000u64, "name": "Bob", "roles": ["editor"], "read_only": true, "team": 7}),
        );
        let g = grant_of(&c, "r").expect("grant");
        let id = g.identity.expect("identity");
        assert_eq!((id.user.as_str(), id.name.as_deref(), id.has_role("editor")), ("bob", Some("Bob"), true));
        assert!(g.read_only);
        assert_eq!(id.claims.as_dict().and_then(|d| d.get("team")).and_then(Value::as_int), Some(7));
        assert!(grant_of(&claims(serde_json::json!({"exp": 1})), "r").is_err(), "sub is required");
    }
}
