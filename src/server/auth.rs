//! Who may connect: what the auth hook is asked ([`AuthRequest`]: the HTTP upgrade request and
//! the `hello` token) and what it answers ([`Grant`]: an identity, read-only, an expiry), the
//! origin check of every upgrade, and the client's address behind trusted proxies.
//!
//! Must not: know rooms or documents.

use crate::model::Identity;
use axum::http::{HeaderMap, HeaderValue};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

/// What the auth hook is asked: the HTTP upgrade request of the connection and its `hello`.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    /// The room the client wants to join.
    pub room: String,
    /// The `token` of its `hello`.
    pub token: Option<String>,
    /// The request path (`/ws/<room>`, or under the prefix where the router is mounted).
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// The request headers (`Cookie`, `Authorization`, `Origin`, `User-Agent`...).
    pub headers: HeaderMap,
    /// The client's address: the TCP peer, or, when the peer is a trusted proxy
    /// ([`ServerBuilder::trust_proxies`](crate::ServerBuilder::trust_proxies)), the address it
    /// forwarded. `None` when the router is mounted in a server that does not give axum's
    /// `ConnectInfo`.
    pub remote: Option<IpAddr>,
    /// The TCP peer itself.
    pub peer: Option<SocketAddr>,
}

impl AuthRequest {
    /// The value of cookie `name`, if the request carries it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The value of query parameter `name`, as sent (not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The `Origin` header, if the client is a browser.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get(axum::http::header::ORIGIN).and_then(|v| v.to_str().ok())
    }
}

/// What the auth hook grants a connection: who it is, whether it may change anything, and until
/// when. `Grant::default()` is an anonymous read-write client with no expiry.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Grant {
    /// The client may read but not change anything.
    pub read_only: bool,
    /// Who the client is; `None` for an anonymous client.
    pub identity: Option<Arc<Identity>>,
    /// When the grant ends: the session is closed with 4006 ("token expired") then, and the
    /// client should get a new token and resume.
    pub expires_at: Option<SystemTime>,
}

impl Grant {
    /// An anonymous, read-write grant without expiry.
    pub fn new() -> Self {
        Grant::default()
    }
    /// A read-write grant for `identity`.
    pub fn user(identity: Identity) -> Self {
        Grant { identity: Some(Arc::new(identity)), ..Grant::default() }
    }
    /// Whether the client may only read.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Until when the grant holds.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// Which browser origins may open a connection (the `Origin` header of the upgrade; clients that
/// are not browsers send none and are not concerned).
#[derive(Clone, Debug, Default)]
pub(crate) enum AllowedOrigins {
    /// Only the server's own origin: an `Origin` whose host and port are the request's `Host`.
    #[default]
    SameOrigin,
    /// These origins (scheme, host and port, as browsers send them) and the server's own.
    List(Vec<String>),
    /// Any origin (`*`): for public, token-authenticated rooms that use no cookies.
    Any,
}

impl AllowedOrigins {
    /// Whether a request with these headers may be upgraded.
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
            return true;
        };
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) if list.iter().any(|o| origin.as_bytes() == o.as_bytes()) => true,
            _ => same_origin(origin, headers.get(axum::http::header::HOST)),
        }
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(|h| h.to_str())) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    with_port(authority, default_port) == with_port(host, default_port)
}

/// `host[:port]` lowercased, with the scheme's default port when it has none (`[::1]` too).
fn with_port(authority: &str, default_port: &str) -> String {
    let a = authority.to_ascii_lowercase();
    let has_port = a.rfind(':').is_some_and(|i| {
        let port = &a[i + 1..];
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    }) && !a.ends_with(']');
    if has_port {
        a
    } else {
        format!("{a}:{default_port}")
    }
}

/// The client's address: `peer`, or the nearest address before the trusted proxies in
/// `X-Forwarded-For` (or `Forwarded: for=`), when the peer is one of `trusted`.
pub(crate) fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    // Hops are appended left to right: walk back from the proxy nearest to us and take the
    // first address that is not one of ours.
    let hops: Vec<IpAddr> = forwarded_hops(headers);
    Some(hops.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer))
}

fn forwarded_hops(headers: &HeaderMap) -> Vec<IpAddr> {
    let xff: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all(axum::http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| k.eq_ignore_ascii_case("for"))
        .filter_map(|(_, v)| {
            let v = v.trim_matches('"');
            let v = v.strip_prefix('[').and_then(|r| r.split_once(']')).map_or(v, |(ip, _)| ip);
            v.parse().ok().or_else(|| v.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        let same = AllowedOrigins::SameOrigin;
        assert!(same.allows(&headers(&[("host", "127.0.0.1:8765")])));
        assert!(same.allows(&headers(&[("host", "127.0.0.1:8765"), ("origin", "http://127.0.0.1:8765")])));
        assert!(same.allows(&headers(&[("host", "example.com"), ("origin", "https://example.com:443")])));
        assert!(!same.allows(&headers(&[("host", "127.0.0.1:8765"), ("origin", "http://evil.example")])));
        assert!(!same.allows(&headers(&[("host", "127.0.0.1:8765"), ("origin", "http://127.0.0.1:9999")])));
        assert!(!same.allows(&headers(&[("host", "127.0.0.1:8765"), ("origin", "null")])));
        let list = AllowedOrigins::List(vec!["https://app.example".into()]);
        assert!(list.allows(&headers(&[("host", "api.example"), ("origin", "https://app.example")])));
        assert!(!list.allows(&headers(&[("host", "api.example"), ("origin", "https://evil.example")])));
        assert!(AllowedOrigins::Any.allows(&headers(&[("host", "a"), ("origin", "https://b")])));
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let peer = Some(SocketAddr::new(proxy, 4000));
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.2")]);
        assert_eq!(client_address(peer, &h, &[]), Some(proxy), "untrusted: the peer");
        assert_eq!(client_address(peer, &h, &[proxy]), Some("198.51.100.2".parse().expect("ip")));
        let inner: IpAddr = "198.51.100.2".parse().expect("ip");
        assert_eq!(client_address(peer, &h, &[proxy, inner]), Some("203.0.113.9".parse().expect("ip")));
        let f = headers(&[("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"")]);
        assert_eq!(client_address(peer, &f, &[proxy]), Some("2001:db8::1".parse().expect("ip")));
    }

    #[test]
    fn cookies_bearer_and_query() {
        let req = AuthRequest {
            room: "r".into(),
            token: None,
            path: "/ws/r".into(),
            query: Some("a=1&token=abc".into()),
            headers: headers(&[("cookie", "theme=dark; session=s3cr3t"), ("authorization", "Bearer tok")]),
            remote: None,
            peer: None,
        };
        assert_eq!(req.cookie("session"), Some("s3cr3t"));
        assert_eq!(req.cookie("nope"), None);
        assert_eq!(req.bearer(), Some("tok"));
        assert_eq!(req.query_param("token"), Some("abc"));
    }
}
