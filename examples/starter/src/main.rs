//! A sticky-notes board on ObjectSync: the starter to copy for one's own app.
//!
//! The types: each room has one `Board` (the root's child) whose children are `Note`s with a text, a
//! color from a palette and a position. The server is the authority: a note's text is at most
//! 280 characters, its color one of the palette and its position on the board; anything else is
//! refused and the client that tried rolls back. The binary is the whole `objectsync::cli`
//! command line for these types: `serve` (rooms in SQLite in `objectsync-data`, the page from
//! `dist/`), `codegen ts` (the page's typed classes), `export` and `import`.

use objectsync::model::{ModelError, Tx, TypeRegistry};
use objectsync::{sobject, Server, ServerBuilder};
use std::process::ExitCode;

sobject! {
    /// The board of a room: its notes are its children.
    pub struct Board: "Board" {
        title: Str = "Notes",
    }
}

sobject! {
    /// A sticky note.
    pub struct Note: "Note" {
        text: Str,
        color: Str = "yellow",
        x: Int = 40,
        y: Int = 40,
    }
}

/// The colors a note may have.
pub const COLORS: [&str; 4] = ["yellow", "pink", "green", "blue"];
/// Width and height of the board, in pixels: notes stay inside.
pub const BOARD: (i64, i64) = (1200, 800);

/// The app's types and their rules.
pub fn types() -> TypeRegistry {
    let mut types = TypeRegistry::new();
    types.register::<Board>();
    types
        .register::<Note>()
        .validate(Note::text, |_, _, text| match text.chars().count() {
            n if n > 280 => Err(format!("a note holds at most 280 characters, not {n}")),
            _ => Ok(()),
        })
        .validate(Note::color, |_, _, color| match COLORS.contains(&color) {
            true => Ok(()),
            false => Err(format!("{color:?} is not one of {COLORS:?}")),
        })
        .validate(Note::x, |_, _, x| inside(x, BOARD.0))
        .validate(Note::y, |_, _, y| inside(y, BOARD.1));
    types
}

fn inside(v: i64, max: i64) -> Result<(), String> {
    match (0..=max).contains(&v) {
        true => Ok(()),
        false => Err(format!("{v} is off the board (0..{max})")),
    }
}

/// A new room: a board with a first note.
fn build_room(tx: &mut Tx<'_>) -> Result<(), ModelError> {
    let board = tx.create::<Board>(tx.root())?;
    tx.create::<Note>(board)?.text().set(tx, "Double-click the board to add a note")
}

/// The server: the types, the room builder and the page in `dist/`.
pub fn app() -> ServerBuilder {
    Server::builder(types()).on_room_create(|_, tx| build_room(tx)).static_dir("dist")
}

fn main() -> ExitCode {
    objectsync::cli::run(app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectsync::model::{Actor, Change, Document};
    use std::sync::Arc;

    #[test]
    fn the_rules_refuse_what_breaks_them() {
        let mut doc = Document::new(Arc::new(types()));
        doc.transact(&Actor::Server, build_room).expect("room");
        let mut note = |attr: &str, value: objectsync::model::Value| {
            let board = *doc.children(doc.root()).first().expect("the board");
            let id = doc.children(board).first().and_then(|k| doc.id(*k)).expect("a note").to_owned();
            doc.apply(&Actor::Client("c1".into()), None, vec![Change::Set { obj: id.into(), attr: attr.into(), value }])
        };
        assert!(note("color", "pink".into()).is_ok());
        assert!(note("color", "purple".into()).is_err());
        assert!(note("x", 5000.into()).is_err());
        assert!(note("text", "a".repeat(281).into()).is_err());
    }
}
