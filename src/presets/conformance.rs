//! A preset that reaches every part of the protocol (`objectsync serve --preset conformance`),
//! so that any client can be tested end to end against the binary: a type with an attribute of
//! every kind, a validator (`invalid`), server code that refuses (`custom`), a permission rule
//! that keeps clients out of a subtree they do not own (`denied`), tokens that make a client
//! read-only or refuse it (close 4001), and services whose changes are made by server code
//! (`origin: "server"`).
//!
//! Each room starts with: `board` (Board) holding `item` (Item, every kind), `lane-open` (Lane,
//! no owner: anyone may edit inside) and `lane-owned` (Lane owned by `nobody`: clients are
//! denied), and `target` (Item, for references).

use crate::model::{Change, Identity, ModelError, TypeRegistry, Value};
use crate::server::{Grant, Server, ServerBuilder};
use crate::{dict, sobject};

sobject! {
    /// The room's top object.
    pub struct Board: "Board" {
        title: Str = "conformance",
        /// Counted up by the `tick` service (server code).
        ticks: Int,
    }
}

sobject! {
    /// One attribute of every kind.
    pub struct Item: "Item" {
        /// A label of `"forbidden"` is refused by server code (`custom`).
        label: Str,
        /// Must not go below 0 (a validator: `invalid`).
        count: Int,
        weight: Float = 1.5,
        done: Bool,
        meta: Dict = dict! { "color" => "red" },
        tags: List = vec!["a", "b"],
        flags: Set,
        ping: Event,
        link: Ref,
        links: RefList,
        named: RefDict,
    }
}

sobject! {
    /// A subtree with an owner: a client that is not `owner` (by client id, or by user id with
    /// a `user:NAME` token) may change nothing inside it (an empty owner lets everyone in).
    pub struct Lane: "Lane" {
        owner: Str,
    }
}

/// The preset's types, validator, reaction and permission rule.
pub fn types() -> TypeRegistry {
    let mut t = TypeRegistry::new();
    t.register::<Board>();
    t.register::<Item>()
        .validate(Item::count, |_, _, count| match count {
            n if n < 0 => Err(format!("count {n} is below 0")),
            _ => Ok(()),
        })
        .on_change(Item::label, |tx, item| match item.label().get(tx)? {
            "forbidden" => Err(ModelError::hook("the label \"forbidden\" is refused by server code")),
            _ => Ok(()),
        });
    t.register::<Lane>();
    t.permission(|a| {
        let Some(client) = a.actor.client_id() else { return Ok(()) };
        let user = a.identity.map(|i| i.user.as_str());
        for place in std::iter::once(a.object).chain(a.destination) {
            let lane =
                std::iter::once(place).chain(a.doc.ancestors(place)).find(|&k| a.doc.type_name(k) == Some("Lane"));
            match lane.and_then(|l| a.doc.value(l, "owner")).and_then(Value::as_str) {
                Some(owner) if !owner.is_empty() && owner != client && Some(owner) != user => {
                    return Err(format!("this lane belongs to {owner}"))
                }
                _ => {}
            }
        }
        Ok(())
    });
    t
}

fn create(id: &str, type_name: &str, parent: &str, attrs: crate::model::Dict) -> Change {
    Change::Create {
        id: id.into(),
        type_name: type_name.into(),
        parent: parent.into(),
        index: None,
        attrs,
        children: Vec::new(),
    }
}

/// The server: the types above, each room's initial tree, the tokens `readonly` (a read-only
/// client), `refuse` (refused, close 4001) and `user:NAME` (user `NAME`, named `User NAME`),
/// and the services `tick` (server code counts `board.ticks` up: an update with origin
/// `server`), `echo` and `whoami` (the caller's user id, or null).
pub fn builder() -> ServerBuilder {
    Server::builder(types())
        .on_room_create(|_, tx| {
            tx.apply(create("board", "Board", "root", Default::default()))?;
            tx.apply(create("item", "Item", "board", Default::default()))?;
            tx.apply(create("target", "Item", "board", dict! { "label" => "target" }))?;
            tx.apply(create("lane-open", "Lane", "board", Default::default()))?;
            tx.apply(create("lane-owned", "Lane", "board", dict! { "owner" => "nobody" }))?;
            tx.apply(create("owned-item", "Item", "lane-owned", Default::default()))
        })
        .authorize(|req| async move {
            match req.token.as_deref() {
                Some("refuse") => Err("this token is refused".to_owned()),
                Some("readonly") => Ok(Grant::new().read_only(true)),
                Some(t) if t.starts_with("user:") && t.len() > 5 => {
                    Ok(Grant::user(Identity::user(&t[5..]).with_name(format!("User {}", &t[5..]))))
                }
                _ => Ok(Grant::new()),
            }
        })
        .service(
            "echo",
            |call| async move { Ok(dict! { "client" => call.client.as_str(), "args" => call.args }.into()) },
        )
        .service("whoami", |call| async move {
            Ok(call.identity.as_ref().map_or(Value::Null, |i| Value::from(i.user.as_str())))
        })
        .service("tick", |call| async move {
            let ticks = call
                .room
                .transact(|tx| {
                    let board: Board = tx.handle(tx.key("board").ok_or_else(|| ModelError::hook("no board"))?)?;
                    let next = board.ticks().get(tx)? + 1;
                    board.ticks().set(tx, next)?;
                    Ok(next)
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(Value::Int(ticks))
        })
}
