//! Who is connecting, over real sockets: the auth hook reads the upgrade request (a session
//! cookie), origins are checked, signed tokens (JWT) are verified and expire mid-session,
//! presence carries the server's word on who a client is, identities travel to services and
//! into resumes, and connections are capped per address (127.0.0.1 against 127.0.0.2) and per
//! user.

use crate::harness::*;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, EncodingKey, Header};
use objectsync::model::{Identity, Value};
use objectsync::ServerLimits;
use objectsync::{Grant, JwtAuth};
use serde_json::json;
use std::net::SocketAddr;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &str = "a shared secret of at least thirty-two bytes";

/// Opens a WebSocket to `room` from source address `from`, with extra request headers; the
/// HTTP status of a refused upgrade as `Err`.
async fn open(addr: SocketAddr, from: &str, room: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{from}:0").parse().expect("from")).expect("bind the source address");
    let tcp = within(socket.connect(addr)).await.expect("tcp connect");
    let mut req = format!("ws://{addr}/ws/{room}").into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    match within(tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// The next JSON message (pings skipped), or the close code as `Err`.
async fn next(ws: &mut Ws) -> Result<serde_json::Value, u16> {
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).expect("json")),
            Some(Ok(Message::Close(f))) => return Err(f.map_or(1005, |f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(1006),
        }
    }
}

/// Says hello (with `extra` fields) and returns the welcome, or the close code.
async fn hello(ws: &mut Ws, extra: serde_json::Value) -> Result<serde_json::Value, u16> {
    let mut msg = json!({"t": "hello", "protocol": 1});
    if let (Some(m), Some(e)) = (msg.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    ws.send(Message::Text(msg.to_string().into())).await.expect("send hello");
    let w = next(ws).await?;
    assert_eq!(w["t"], "welcome", "{w}");
    Ok(w)
}

async fn send(ws: &mut Ws, msg: serde_json::Value) {
    ws.send(Message::Text(msg.to_string().into())).await.expect("send");
}

/// The next message whose `t` is `t`.
async fn next_of(ws: &mut Ws, t: &str) -> Result<serde_json::Value, u16> {
    loop {
        let m = next(ws).await?;
        if m["t"] == t {
            return Ok(m);
        }
    }
}

fn token(claims: serde_json::Value) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes()).expect("key")).expect("encode")
}

/// A server whose auth hook lets in the holder of a `session` cookie it knows.
async fn cookie_server() -> TestServer {
    let builder = TestServer::builder().authorize(|req| async move {
        match req.cookie("session") {
            Some("s-alice") => Ok(Grant::user(Identity::user("alice").with_name("Alice"))),
            Some("s-bob") => Ok(Grant::user(Identity::user("bob").with_name("Bob"))),
            _ => Err("no valid session cookie".into()),
        }
    });
    TestServer::start_with(builder).await
}

#[tokio::test]
async fn the_auth_hook_reads_a_session_cookie_and_names_the_user() {
    let ts = cookie_server().await;
    let mut alice = open(ts.addr, "127.0.0.1", "r", &[("cookie", "theme=dark; session=s-alice")]).await.expect("open");
    let w = hello(&mut alice, json!({})).await.expect("alice is let in");
    assert_eq!(w["identity"], json!({"id": "alice", "name": "Alice"}));
    let mut nobody = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=forged")]).await.expect("open");
    assert_eq!(hello(&mut nobody, json!({})).await.expect_err("refused"), 4001);
    let mut none = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    assert_eq!(hello(&mut none, json!({})).await.expect_err("refused"), 4001);
    ts.stop().await;
}

#[tokio::test]
async fn presence_carries_the_servers_word_on_who_a_client_is() {
    let ts = cookie_server().await;
    let mut alice = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=s-alice")]).await.expect("open");
    hello(&mut alice, json!({})).await.expect("alice");
    let mut bob = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=s-bob")]).await.expect("open");
    hello(&mut bob, json!({})).await.expect("bob");
    // Alice claims to be Bob in her own state: the server says who she is.
    send(&mut alice, json!({"t": "presence", "state": {"user": "bob", "name": "Bob", "cursor": [1, 2]}})).await;
    let p = next_of(&mut bob, "presence").await.expect("presence");
    assert_eq!(p["user"], json!({"id": "alice", "name": "Alice"}));
    assert_eq!(p["state"]["name"], "Bob", "the state is the client's own; `user` is the server's");
    // A later joiner learns the same from its welcome.
    let mut carol = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=s-bob")]).await.expect("open");
    let w = hello(&mut carol, json!({})).await.expect("welcome");
    let alice_id = p["client"].as_str().expect("client id");
    assert_eq!(w["users"][alice_id], json!({"id": "alice", "name": "Alice"}));
    ts.stop().await;
}

#[tokio::test]
async fn a_resume_by_another_user_is_a_new_client() {
    let ts = cookie_server().await;
    let mut alice = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=s-alice")]).await.expect("open");
    let w = hello(&mut alice, json!({})).await.expect("alice");
    drop(alice);
    let resume = json!({"resume": {"client": w["client"], "resume_token": w["resume_token"], "version": w["version"]}});
    let mut bob = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=s-bob")]).await.expect("open");
    let stolen = hello(&mut bob, resume.clone()).await.expect("bob");
    assert_ne!(stolen["client"], w["client"], "bob does not become alice's client");
    assert!(stolen.get("snapshot").is_some());
    let mut again = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=s-alice")]).await.expect("open");
    let back = hello(&mut again, resume).await.expect("alice again");
    assert_eq!(back["client"], w["client"], "alice herself resumes");
    ts.stop().await;
}

#[tokio::test]
async fn services_see_the_callers_identity() {
    let builder = TestServer::builder()
        .authorize(|req| async move {
            let user = req.cookie("session").unwrap_or("anonymous").to_owned();
            Ok(Grant::user(Identity::user(user).with_role("editor")))
        })
        .service("whoami", |call| async move {
            let who =
                call.identity.as_ref().map_or("nobody".to_owned(), |i| format!("{} {}", i.user, i.has_role("editor")));
            Ok(Value::from(who))
        });
    let ts = TestServer::start_with(builder).await;
    let mut c = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=dana")]).await.expect("open");
    hello(&mut c, json!({})).await.expect("welcome");
    send(&mut c, json!({"t": "call", "id": 1, "service": "whoami", "args": null})).await;
    assert_eq!(next_of(&mut c, "result").await.expect("result")["ok"], "dana true");
    ts.stop().await;
}

#[tokio::test]
async fn cross_origin_upgrades_are_refused_unless_allowed() {
    let ts = TestServer::start().await;
    let host = ts.addr.to_string();
    let own = format!("http://{host}");
    assert_eq!(open(ts.addr, "127.0.0.1", "r", &[("origin", "http://evil.example")]).await.err(), Some(403));
    let mut same = open(ts.addr, "127.0.0.1", "r", &[("origin", &own)]).await.expect("same origin");
    hello(&mut same, json!({})).await.expect("welcome");
    let mut tool = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("no Origin: not a browser");
    hello(&mut tool, json!({})).await.expect("welcome");
    ts.stop().await;
    let ts = TestServer::start_with(TestServer::builder().allowed_origins(["http://app.example"])).await;
    let mut app = open(ts.addr, "127.0.0.1", "r", &[("origin", "http://app.example")]).await.expect("allowed");
    hello(&mut app, json!({})).await.expect("welcome");
    assert_eq!(open(ts.addr, "127.0.0.1", "r", &[("origin", "http://evil.example")]).await.err(), Some(403));
    ts.stop().await;
}

#[tokio::test]
async fn signed_tokens_are_verified_and_say_who_and_where() {
    let jwt = JwtAuth::hs256(SECRET).expect("secret");
    let ts = TestServer::start_with(TestServer::builder().authorize_jwt(jwt)).await;
    let exp = now_secs() + 600;
    let good = token(json!({"sub": "erin", "name": "Erin", "rooms": ["team-*"], "exp": exp}));
    let mut c = open(ts.addr, "127.0.0.1", "team-a", &[]).await.expect("open");
    let w = hello(&mut c, json!({"token": good})).await.expect("a valid token");
    assert_eq!(w["identity"], json!({"id": "erin", "name": "Erin"}));
    // In the Authorization header instead of hello.
    let mut h =
        open(ts.addr, "127.0.0.1", "team-b", &[("authorization", &format!("Bearer {good}"))]).await.expect("open");
    hello(&mut h, json!({})).await.expect("a bearer token");
    let refused = |token: String, room: &'static str| async move {
        let mut c = open(ts.addr, "127.0.0.1", room, &[]).await.expect("open");
        hello(&mut c, json!({"token": token})).await.expect_err("refused")
    };
    let forged = encode(
        &Header::default(),
        &json!({"sub": "erin", "exp": exp}),
        &EncodingKey::from_secret(b"another secret of thirty-two bytes!!").expect("key"),
    )
    .expect("encode");
    assert_eq!(refused(forged, "team-a").await, 4001, "bad signature");
    assert_eq!(refused(good.clone(), "lobby").await, 4001, "a room the token does not open");
    assert_eq!(refused(token(json!({"sub": "erin", "exp": now_secs() - 10})), "team-a").await, 4001, "expired");
    assert_eq!(refused(String::new(), "team-a").await, 4001, "no token");
    ts.stop().await;
}

#[tokio::test]
async fn a_token_expiring_mid_session_closes_it_with_4006() {
    let jwt = JwtAuth::hs256(SECRET).expect("secret");
    let ts = TestServer::start_with(TestServer::builder().authorize_jwt(jwt)).await;
    let short = token(json!({"sub": "finn", "exp": now_secs() + 2}));
    let mut c = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    let w = hello(&mut c, json!({"token": short})).await.expect("welcome");
    let code = loop {
        match next(&mut c).await {
            Ok(_) => continue,
            Err(code) => break code,
        }
    };
    assert_eq!(code, 4006);
    // A fresh token resumes the same client.
    let fresh = token(json!({"sub": "finn", "exp": now_secs() + 600}));
    let mut again = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    let resume = json!({"token": fresh, "resume": {"client": w["client"], "resume_token": w["resume_token"], "version": w["version"]}});
    let back = hello(&mut again, resume).await.expect("resumed");
    assert_eq!(back["client"], w["client"]);
    assert!(back.get("snapshot").is_none(), "a catch-up, not a reload");
    ts.stop().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_place() {
    let limits = ServerLimits { connections_per_address_max: 2, ..TestServer::builder_limits() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
        hello(&mut c, json!({})).await.expect("welcome");
        held.push(c);
    }
    // Refused at once, before any hello (a flood of silent sockets is refused too).
    let mut third = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    assert_eq!(next(&mut third).await.expect_err("closed"), 4007);
    // Another address still gets in.
    let mut other = open(ts.addr, "127.0.0.2", "r", &[]).await.expect("open");
    hello(&mut other, json!({})).await.expect("another address is served");
    // A place given back is taken again.
    held.pop();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let mut c = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
        if hello(&mut c, json!({})).await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the freed place was never given back");

        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    ts.stop().await;
}

#[tokio::test]
async fn one_user_is_capped_in_connections_and_in_messages_across_them() {
    let limits = ServerLimits {
        connections_per_user_max: 2,
        user_messages_per_second_max: 1,
        user_message_burst_max: 6,
        ..TestServer::builder_limits()
    };
    let builder = TestServer::builder().limits(limits).authorize(|req| async move {
        Ok(Grant::user(Identity::user(req.cookie("session").unwrap_or("anon").to_owned())))
    });
    let ts = TestServer::start_with(builder).await;
    let mut a = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=gus")]).await.expect("open");
    hello(&mut a, json!({})).await.expect("1");
    let mut b = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=gus")]).await.expect("open");
    hello(&mut b, json!({})).await.expect("2");
    let mut c = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=gus")]).await.expect("open");
    assert_eq!(hello(&mut c, json!({})).await.expect_err("a third connection of gus"), 4007);
    let mut h = open(ts.addr, "127.0.0.1", "r", &[("cookie", "session=hal")]).await.expect("open");
    hello(&mut h, json!({})).await.expect("another user");
    // Gus's two connections share one burst of 6 calls; hal has his own.
    for i in 0..4 {
        send(&mut a, json!({"t": "call", "id": i, "service": "echo", "args": i})).await;
        send(&mut b, json!({"t": "call", "id": i, "service": "echo", "args": i})).await;
    }
    let mut limited = 0;
    for ws in [&mut a, &mut b] {
        for _ in 0..4 {
            let m = next(ws).await.expect("an answer");
            if m["t"] == "error" && m["code"] == "rate_limited" {
                limited += 1;
            }
        }
    }
    assert_eq!(limited, 2, "8 messages against a shared burst of 6");
    for i in 0..4 {
        send(&mut h, json!({"t": "call", "id": i, "service": "echo", "args": i})).await;
    }
    for _ in 0..4 {
        assert_eq!(next(&mut h).await.expect("answer")["t"], "result");
    }
    ts.stop().await;
}

/// Unpadded base64url, as JWKs write key coordinates.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn es256_tokens_are_verified_with_a_public_key_or_a_jwks_document() {
    let key = rcgen::KeyPair::generate().expect("a P-256 key");
    let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("signing key");
    let sign = |claims: serde_json::Value, kid: Option<&str>| {
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        encode(&header, &claims, &signing).expect("encode")
    };
    let claims = json!({"sub": "jo", "exp": now_secs() + 600, "iss": "https://auth.example"});
    // A public key in PEM, with the issuer required.
    let jwt = JwtAuth::es256_pem(key.public_key_pem().as_bytes()).expect("public key").issuer("https://auth.example");
    let ts = TestServer::start_with(TestServer::builder().authorize_jwt(jwt)).await;
    let mut c = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    assert_eq!(
        hello(&mut c, json!({"token": sign(claims.clone(), None)})).await.expect("welcome")["identity"]["id"],
        "jo"
    );
    let other_issuer = sign(json!({"sub": "jo", "exp": now_secs() + 600, "iss": "https://evil.example"}), None);
    let mut d = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    assert_eq!(hello(&mut d, json!({"token": other_issuer})).await.expect_err("wrong issuer"), 4001);
    let hs = token(json!({"sub": "jo", "exp": now_secs() + 600}));
    let mut e = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    assert_eq!(hello(&mut e, json!({"token": hs})).await.expect_err("another algorithm"), 4001);
    ts.stop().await;
    // The same key in a JWKS document, chosen by kid.
    let point = key.public_key_raw();
    assert_eq!((point.len(), point[0]), (65, 4), "an uncompressed P-256 point");
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": base64url(&point[1..33]), "y": base64url(&point[33..])}]});
    let ts =
        TestServer::start_with(TestServer::builder().authorize_jwt(JwtAuth::jwks(&jwks.to_string()).expect("jwks")))
            .await;
    let mut f = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    hello(&mut f, json!({"token": sign(claims.clone(), Some("k1"))})).await.expect("the JWKS key");
    let mut g = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    assert_eq!(
        hello(&mut g, json!({"token": sign(claims.clone(), Some("k2"))})).await.expect_err("an unknown kid"),
        4001
    );
    // A token that names HS256 for the JWKS key's kid is refused: the key decides the algorithm.
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused = encode(&header, &claims, &EncodingKey::from_secret(key.public_key_pem().as_bytes()).expect("key"))
        .expect("encode");
    let mut h = open(ts.addr, "127.0.0.1", "r", &[]).await.expect("open");
    assert_eq!(hello(&mut h, json!({"token": confused})).await.expect_err("algorithm confusion"), 4001);
    ts.stop().await;
}

objectsync::sobject! {
    /// A card only its owner may edit.
    pub struct Card: "Card" {
        owner: Str,
        text: Str,
        last_editor: Str,
    }
}

/// Types whose hooks decide by identity: the permission hook (a card is its owner's, on every
/// connection of the owner), a validator (`admin:` texts need the admin role) and a reaction
/// (who edited last).
fn card_types() -> objectsync::model::TypeRegistry {
    let mut types = objectsync::model::TypeRegistry::new();
    types
        .register::<Card>()
        .validate(Card::text, |doc, _, text| match text.starts_with("admin:") {
            true if !doc.acting_identity().is_some_and(|i| i.has_role("admin")) => Err("admins only".into()),
            _ => Ok(()),
        })
        .on_change(Card::text, |tx, card| {
            let who = tx.identity().map_or("anonymous".to_owned(), |i| i.user.to_string());
            card.last_editor().set(tx, who)
        });
    types.permission(|a| {
        let card = std::iter::once(a.object).find(|&k| a.doc.type_name(k) == Some("Card"));
        let owner = card.and_then(|k| a.doc.value(k, "owner")).and_then(Value::as_str);
        match (owner, a.identity) {
            (Some(owner), Some(me)) if owner == me.user => Ok(()),
            (Some(owner), _) => Err(format!("this card is {owner}'s")),
            (None, _) => Ok(()),
        }
    });
    types
}

#[tokio::test]
async fn the_permission_hook_validators_and_reactions_see_who_acts_across_a_users_connections() {
    let builder = objectsync::Server::builder(card_types())
        .in_memory()
        .limits(TestServer::builder_limits())
        .on_room_create(|_, tx| {
            for (id, owner) in [("card-a", "alice"), ("card-b", "bob")] {
                tx.apply(objectsync::model::Change::Create {
                    id: id.into(),
                    type_name: "Card".into(),
                    parent: "root".into(),
                    index: None,
                    attrs: objectsync::dict! { "owner" => owner },
                    children: Vec::new(),
                })?;
            }
            Ok(())
        })
        .authorize(|req| async move {
            match req.cookie("session") {
                Some("s-alice") => Ok(Grant::user(Identity::user("alice").with_role("admin"))),
                Some("s-bob") => Ok(Grant::user(Identity::user("bob"))),
                _ => Err("who are you?".into()),
            }
        });
    let ts = TestServer::start_with(builder).await;
    let join = |session: &'static str| async move {
        let mut ws = open(ts.addr, "127.0.0.1", "cards", &[("cookie", session)]).await.expect("open");
        let w = hello(&mut ws, json!({})).await.expect("welcome");
        (ws, w["version"].as_u64().expect("version"))
    };
    let (mut alice1, v) = join("session=s-alice").await;
    let (mut alice2, _) = join("session=s-alice").await;
    let (mut bob, _) = join("session=s-bob").await;
    let mut id = 0;
    let mut edit = |card: &str, text: &str| {
        id += 1;
        (
            id,
            json!({"t": "action", "id": id, "base": v, "changes": [{"op": "set", "obj": card, "attr": "text", "value": text}]}),
        )
    };
    /// The answer to action `id`: the update's changes, or the reject's code.
    async fn answer(ws: &mut Ws, id: u64) -> Result<serde_json::Value, String> {
        loop {
            let m = next(ws).await.expect("a message");
            match m["t"].as_str() {
                Some("update") if m["action"] == id => return Ok(m["changes"].clone()),
                Some("reject") if m["action"] == id => return Err(m["code"].as_str().unwrap_or("?").to_owned()),
                _ => continue,
            }
        }
    }
    let (a, msg) = edit("card-a", "from alice's first tab");
    send(&mut alice1, msg).await;
    let changes = answer(&mut alice1, a).await.expect("alice edits her card");
    assert!(
        changes.to_string().contains(r#""attr":"last_editor","#) && changes.to_string().contains(r#""value":"alice""#),
        "{changes}"
    );
    let (a2, msg) = edit("card-a", "from alice's second tab");
    send(&mut alice2, msg).await;
    answer(&mut alice2, a2).await.expect("and from her other connection");
    let (b, msg) = edit("card-b", "alice was here");
    send(&mut alice1, msg).await;
    assert_eq!(answer(&mut alice1, b).await.expect_err("not her card"), "denied");
    let (c, msg) = edit("card-b", "bob's own");
    send(&mut bob, msg).await;
    answer(&mut bob, c).await.expect("bob edits his card");
    let (d, msg) = edit("card-a", "bob was here");
    send(&mut bob, msg).await;
    assert_eq!(answer(&mut bob, d).await.expect_err("not his card"), "denied");
    // The validator sees the acting identity's roles.
    let (e, msg) = edit("card-b", "admin: bob");
    send(&mut bob, msg).await;
    assert_eq!(answer(&mut bob, e).await.expect_err("bob is no admin"), "invalid");
    let (f, msg) = edit("card-a", "admin: alice");
    send(&mut alice1, msg).await;
    answer(&mut alice1, f).await.expect("alice is an admin");
    ts.stop().await;
}

/// Seconds since 1970 now, as tokens say times.
fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}
