//! A board of cards whose types changed twice: the example of docs/migrations.md, served by
//! `objectsync serve --preset cards-v1` (or `cards-v2`, `cards-v3`) and migrated with
//! `objectsync migrate --preset cards-v3 --dry-run`.
//!
//! - **Version 1**: a `Board` (an attribute of every kind, references to cards among them), its
//!   `Card`s (`text`, `size` as a string, `legacy`, ...) and `Scratch` objects.
//! - **Version 2**: `Card.text` is renamed `body`, `size` becomes an `int` (validated: not
//!   below 0), `legacy` is removed, cards counted 10 or more become `BigCard`s (a type split),
//!   and `Scratch` is removed (its objects deleted, references to them cleared).
//! - **Version 3**: `body` is renamed `content`, cards get a `color` (a new attribute, filled
//!   with its default), and the board's `meta.owner` moves into an attribute of its own.
//!
//! Each version's [`types`] registers the steps from every earlier version, so a room stored
//! at version 1 loads at version 3 through both.

use crate::model::{Migration, TypeRegistry, Value};
use crate::server::{Server, ServerBuilder};
use crate::sobject;

/// The types of version 1.
pub mod v1 {
    use super::*;
    sobject! {
        /// The board: an attribute of every kind.
        pub struct Board: "Board" {
            title: Str = "board",
            tags: Set,
            meta: Dict,
            order: RefList,
            pinned: Ref,
            labels: RefDict,
            ping: Event,
        }
    }
    sobject! {
        /// A card, its size written as text.
        pub struct Card: "Card" {
            text: Str,
            size: Str = "1",
            legacy: Bool,
            weight: Float,
            count: Int,
            notes: List,
        }
    }
    sobject! {
        /// Notes no one needs any more.
        pub struct Scratch: "Scratch" {
            junk: Str,
        }
    }

    /// The registry of version 1.
    pub fn types() -> TypeRegistry {
        let mut t = TypeRegistry::new();
        t.register::<Board>();
        t.register::<Card>();
        t.register::<Scratch>();
        t
    }
}

/// The types of version 2.
pub mod v2 {
    pub use super::v1::Board;
    use super::*;
    sobject! {
        /// A card, its size a number.
        pub struct Card: "Card" {
            body: Str,
            size: Int = 1,
            weight: Float,
            count: Int,
            notes: List,
        }
    }
    sobject! {
        /// A card counted 10 or more (split off `Card`).
        pub struct BigCard: "BigCard" {
            body: Str,
            size: Int = 1,
            weight: Float,
            count: Int,
            notes: List,
        }
    }

    /// The step from version 1: rename, convert, remove, split, remove a type.
    pub fn from_1() -> Migration {
        Migration::from_version(1)
            .rename_attr("Card", "text", "body")
            .convert_attr("Card", "size", |v| match v {
                Value::String(s) => s.trim().parse::<i64>().map(Value::Int).map_err(|e| format!("size {s:?}: {e}")),
                other => Err(format!("size is a {}, not a string", other.type_name())),
            })
            .remove_attr("Card", "legacy")
            .rewrite("Card", |card| {
                if card.attrs.get("count").and_then(Value::as_int).is_some_and(|n| n >= 10) {
                    card.type_name = "BigCard".into();
                }
                Ok(())
            })
            .remove_type("Scratch")
    }

    /// The registry of version 2, with the step from version 1.
    pub fn types() -> TypeRegistry {
        let mut t = TypeRegistry::new().version(2);
        t.register::<Board>();
        t.register::<Card>().validate(Card::size, not_negative);
        t.register::<BigCard>().validate(BigCard::size, not_negative);
        t.migration(from_1());
        t
    }
}

/// The types of version 3.
pub mod v3 {
    use super::*;
    sobject! {
        /// The board, its owner an attribute of its own.
        pub struct Board: "Board" {
            title: Str = "board",
            owner: Str,
            tags: Set,
            meta: Dict,
            order: RefList,
            pinned: Ref,
            labels: RefDict,
            ping: Event,
        }
    }
    sobject! {
        /// A card with a color.
        pub struct Card: "Card" {
            content: Str,
            color: Str = "white",
            size: Int = 1,
            weight: Float,
            count: Int,
            notes: List,
        }
    }
    sobject! {
        /// A card counted 10 or more.
        pub struct BigCard: "BigCard" {
            content: Str,
            color: Str = "white",
            size: Int = 1,
            weight: Float,
            count: Int,
            notes: List,
        }
    }

    /// The step from version 2: a rename in two types, a value moved into a new attribute.
    pub fn from_2() -> Migration {
        Migration::from_version(2)
            .rename_attr("Card", "body", "content")
            .rename_attr("BigCard", "body", "content")
            .rewrite("Board", |board| {
                let owner = match board.attrs.get_mut("meta") {
                    Some(Value::Dict(meta)) => meta.remove("owner"),
                    _ => None,
                };
                match owner {
                    Some(Value::String(name)) => {
                        board.attrs.insert("owner", name);
                        Ok(())
                    }
                    Some(other) => Err(format!("meta.owner is a {}, not a string", other.type_name())),
                    None => Ok(()),
                }
            })
    }

    /// The registry of version 3, with the steps from versions 1 and 2.
    pub fn types() -> TypeRegistry {
        let mut t = TypeRegistry::new().version(3);
        t.register::<Board>();
        t.register::<Card>().validate(Card::size, not_negative);
        t.register::<BigCard>().validate(BigCard::size, not_negative);
        t.migration(v2::from_1());
        t.migration(from_2());
        t
    }
}

fn not_negative<T>(_: &crate::model::Document, _: T, size: i64) -> Result<(), String> {
    match size {
        n if n < 0 => Err(format!("size {n} is below 0")),
        _ => Ok(()),
    }
}

/// The types of `version` (1, 2 or 3).
///
/// # Panics
/// For any other version.
pub fn types(version: u32) -> TypeRegistry {
    match version {
        1 => v1::types(),
        2 => v2::types(),
        3 => v3::types(),
        _ => panic!("the cards preset has versions 1 to 3, not {version}"),
    }
}

/// A server of the types of `version`, each new room starting empty.
pub fn builder(version: u32) -> ServerBuilder {
    Server::builder(types(version))
}
