//! The WebSocket upgrade, done on hyper directly so that sessions hold a tokio-tungstenite
//! stream: axum's own `WebSocket` hides frames, and sessions need them to write a large message
//! as several fragments (tungstenite keeps a socket's write buffer at the size of the largest
//! frame it ever wrote, for as long as the socket lives).
//!
//! Only HTTP/1.1 upgrades (RFC 6455); anything else is answered with a plain HTTP error.

use crate::protocol;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// A server-side WebSocket after the upgrade.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A request that asked for a WebSocket, checked, not yet answered.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade (answered as plain HTTP).
#[derive(Debug, PartialEq)]
pub(crate) struct NotWebSocket(pub(crate) StatusCode, pub(crate) &'static str);

impl IntoResponse for NotWebSocket {
    fn into_response(self) -> Response {
        let mut response = (self.0, self.1).into_response();
        if self.0 == StatusCode::UPGRADE_REQUIRED {
            // RFC 6455 4.4: a version the server does not speak is answered with the ones it does.
            response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        response
    }
}

impl Upgrade {
    /// Checks that `req` is a WebSocket handshake this server can accept.
    pub(crate) fn from_request(mut req: Request) -> Result<Upgrade, NotWebSocket> {
        let bad = |reason| Err(NotWebSocket(StatusCode::BAD_REQUEST, reason));
        if req.method() != Method::GET {
            return Err(NotWebSocket(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket handshake is a GET"));
        }
        let headers = req.headers();
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return bad("the Connection header must include `upgrade`");
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return bad("the Upgrade header must be `websocket`");
        }
        if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(NotWebSocket(StatusCode::UPGRADE_REQUIRED, "Sec-WebSocket-Version must be 13"));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return bad("the Sec-WebSocket-Key header is missing");
        };
        let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
            return bad("this connection cannot be upgraded");
        };
        Ok(Upgrade { key, on_upgrade })
    }

    /// Answers `101 Switching Protocols` and runs `session` on the socket once the upgrade is
    /// done (in a task of its own; a failed upgrade runs nothing).
    pub(crate) fn accept<F, Fut>(self, config: WebSocketConfig, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
            session(socket).await;
        });
        let accept = derive_accept_key(self.key.as_bytes());
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        response
    }
}

/// Whether header `name` lists `token` (comma separated, any case).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `text` as WebSocket messages to write: itself when it is at most `fragment_bytes` long,
/// else fragments of at most that many bytes (split between characters), which the peer
/// reassembles into the one message. No copy: every message shares the frame's bytes.
pub(crate) fn text_fragments(text: protocol::Frame, fragment_bytes: usize) -> impl Iterator<Item = Message> {
    let fragment_bytes = fragment_bytes.max(4);
    let len = text.len();
    let (whole, long) = if len <= fragment_bytes { (Some(text), None) } else { (None, Some(text)) };
    let whole = whole.map(|text| {
        // SAFETY: a protocol::Frame is valid UTF-8 (it is only made from Rust strings).
        Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(text.into_bytes()) })
    });
    let fragments = long.map(|text| {
        let mut start = 0;
        std::iter::from_fn(move || {
            if start >= len {
                return None;
            }
            let mut end = (start + fragment_bytes).min(len);
            while !text.as_str().is_char_boundary(end) {
                end -= 1;
            }
            let opcode = if start == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            let bytes = text.clone().into_bytes().slice(start..end);
            let frame = Frame::message(bytes, opcode, end == len);
            start = end;
            Some(Message::Frame(frame))
        })
    });
    whole.into_iter().chain(fragments.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(text: &str, size: usize) -> Vec<(String, bool, bool)> {
        text_fragments(protocol::Frame::from(text.to_owned()), size)
            .map(|m| match m {
                Message::Text(t) => (t.to_string(), true, true),
                Message::Frame(f) => {
                    let first = f.header().opcode == OpCode::Data(Data::Text);
                    let fin = f.header().is_final;
                    (String::from_utf8(f.into_payload().to_vec()).unwrap_or_default(), first, fin)
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_short_text_stays_one_message() {
        assert_eq!(payloads("hello", 8), vec![("hello".to_owned(), true, true)]);
    }

    #[test]
    fn a_long_text_splits_between_characters_and_reassembles() {
        let text = "aé😀".repeat(50);
        let parts = payloads(&text, 16);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|(p, _, _)| p.len() <= 16 && !p.is_empty()));
        assert_eq!(parts.iter().map(|(p, _, _)| p.as_str()).collect::<String>(), text);
        assert!(parts[0].1 && parts.iter().skip(1).all(|(_, first, _)| !first));
        assert!(parts.last().is_some_and(|p| p.2) && parts.iter().rev().skip(1).all(|(_, _, fin)| !fin));
    }
}
