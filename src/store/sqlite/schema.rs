//! The SQLite file's schema: creating it, checking an existing file, converting files of older
//! schemas, and the checksums of what is stored.

use super::{backend_at, damaged};
use crate::store::{LogEntry, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// The schema this build writes and reads. 2: checksums on stored snapshots and log entries,
/// and a commit counter. 3: the log keeps the store's own record of a transition (origin,
/// action, changes) instead of the socket's `update` message. 4: each log entry records the
/// schema version of the application's types it was written with. Files of older schemas are
/// converted when opened for writing.
pub(super) const SCHEMA_VERSION: i64 = 4;

/// Files up to this size get SQLite's `quick_check` when opened for writing (larger ones are
/// checked page by page as they are read): a damaged file is refused at start, naming it.
const INTEGRITY_CHECK_BYTES_MAX: u64 = 256 << 20;

/// The log table of schema 4.
const CREATE_LOG: &str = "CREATE TABLE IF NOT EXISTS log (room TEXT NOT NULL, version INTEGER NOT NULL, origin TEXT,
                          action INTEGER, changes TEXT NOT NULL, sum BLOB,
                          schema_version INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (room, version)) WITHOUT ROWID;";

/// Sets up a new file, or checks and converts an existing one; returns the store's secret and
/// commit number.
pub(super) fn init(conn: &Connection, path: &Path) -> Result<([u8; 32], u64), StoreError> {
    let e = |e: rusqlite::Error| damaged(path, &e.to_string());
    let size = std::fs::metadata(path).map_err(|e| backend_at(path, e))?.len();
    conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
    // FULL: a commit is on disk when it returns (WAL is synced at every commit).
    conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
    let version = schema_version(conn).map_err(e)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if size > 0 && size <= INTEGRITY_CHECK_BYTES_MAX {
        let check: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(e)?;
        if check != "ok" {
            return Err(damaged(path, &format!("SQLite's integrity check says: {check}")));
        }
    }
    // One transaction: a conversion that fails half-way leaves the file as it was.
    let tx = conn.unchecked_transaction().map_err(e)?;
    let old_log = (1..3).contains(&version) && has_table(&tx, "log").map_err(e)?;
    if version == 1 {
        convert_from_1(&tx).map_err(e)?;
    }
    if old_log {
        tx.execute_batch("ALTER TABLE log RENAME TO log_of_schema_2").map_err(e)?;
    }
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS rooms (name TEXT PRIMARY KEY, version INTEGER NOT NULL, snapshot TEXT NOT NULL,
                                           sum BLOB);
         {CREATE_LOG}
         CREATE TABLE IF NOT EXISTS clients (room TEXT NOT NULL, id TEXT NOT NULL, last_action INTEGER NOT NULL,
                                             PRIMARY KEY (room, id)) WITHOUT ROWID;"
    ))
    .map_err(e)?;
    if old_log {
        convert_log_from_2(&tx).map_err(e)?;
    }
    if version == 3 {
        // Every entry so far was written before types had versions: version 1.
        tx.execute_batch("ALTER TABLE log ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1").map_err(e)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(e)?;
    let secret: Option<Vec<u8>> =
        tx.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| r.get(0)).optional().map_err(e)?;
    let secret = match secret {
        Some(s) => s,
        None => {
            let s: [u8; 32] = rand::random();
            tx.execute("INSERT INTO meta (key, value) VALUES ('secret', ?1)", params![s.to_vec()]).map_err(e)?;
            s.to_vec()
        }
    };
    let secret = <[u8; 32]>::try_from(secret.as_slice())
        .map_err(|_| damaged(path, "the store's secret has the wrong length"))?;
    let commits = read_commits(&tx).map_err(e)?;
    tx.commit().map_err(e)?;
    Ok((secret, commits))
}

/// The secret and commit number of an existing file, read without writing anything.
pub(super) fn read_meta(conn: &Connection, path: &Path) -> Result<([u8; 32], u64), StoreError> {
    let e = |e: rusqlite::Error| damaged(path, &e.to_string());
    let secret: Vec<u8> = conn.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| r.get(0)).map_err(e)?;
    let secret = <[u8; 32]>::try_from(secret.as_slice())
        .map_err(|_| damaged(path, "the store's secret has the wrong length"))?;
    Ok((secret, read_commits(conn).map_err(e)?))
}

/// The file's schema (0 for a new, empty file).
pub(super) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn read_commits(conn: &Connection) -> rusqlite::Result<u64> {
    let v: Option<i64> = conn.query_row("SELECT value FROM meta WHERE key = 'commits'", [], |r| r.get(0)).optional()?;
    // No row: no commit counted yet (a new store, or one of schema 1 before its first commit).
    Ok(v.unwrap_or(0) as u64)
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", params![name], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

/// Schema 1 had no checksums: add the columns and fill them from what is stored.
fn convert_from_1(conn: &Connection) -> rusqlite::Result<()> {
    let has_sum = |table: &str| -> rusqlite::Result<bool> {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let names = stmt.query_map([], |r| r.get::<_, String>(1))?.collect::<Result<Vec<_>, _>>()?;
        Ok(names.iter().any(|n| n == "sum"))
    };
    if has_table(conn, "rooms")? && !has_sum("rooms")? {
        conn.execute_batch("ALTER TABLE rooms ADD COLUMN sum BLOB")?;
        let rooms: Vec<(String, String)> = conn
            .prepare("SELECT name, snapshot FROM rooms")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (name, text) in rooms {
            conn.execute("UPDATE rooms SET sum = ?1 WHERE name = ?2", params![checksum(&text).to_vec(), name])?;
        }
    }
    if has_table(conn, "log")? && !has_sum("log")? {
        conn.execute_batch("ALTER TABLE log ADD COLUMN sum BLOB")?;
        let entries: Vec<(String, i64, String)> = conn
            .prepare("SELECT room, version, frame FROM log")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (room, version, frame) in entries {
            conn.execute(
                "UPDATE log SET sum = ?1 WHERE room = ?2 AND version = ?3",
                params![checksum(&frame).to_vec(), room, version],
            )?;
        }
    }
    Ok(())
}

/// Schema 2 logged whole `update` messages (renamed `log_of_schema_2` by now): each becomes the
/// store's own record. An entry that did not match its checksum, or that is not an update this
/// server wrote, is kept as it was, without a checksum, so that loading its room still says it
/// is corrupt (and `export --raw` still shows it); converting must not make it look sound.
fn convert_log_from_2(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(String, i64, String, Option<Vec<u8>>)> = conn
        .prepare("SELECT room, version, frame, sum FROM log_of_schema_2")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut insert =
        conn.prepare("INSERT INTO log (room, version, origin, action, changes, sum) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    for (room, version, frame, sum) in rows {
        let sound = sum.as_deref() == Some(&checksum(&frame)[..]);
        match entry_of_frame(version as u64, &frame) {
            Ok(e) if sound => {
                let sum = entry_checksum(&e).to_vec();
                insert.execute(params![
                    room,
                    version,
                    e.origin.as_deref(),
                    e.action.map(|a| a as i64),
                    e.changes,
                    sum
                ])?
            }
            _ => insert.execute(params![room, version, None::<&str>, None::<i64>, frame, None::<Vec<u8>>])?,
        };
    }
    drop(insert);
    conn.execute_batch("DROP TABLE log_of_schema_2")
}

/// A log entry of schema 2 (an `update` message) as the record of schema 3.
pub(super) fn entry_of_frame(version: u64, frame: &str) -> Result<LogEntry, String> {
    let parts = crate::protocol::split_update(frame)?;
    if parts.v != version {
        return Err(format!("the update says version {} but is stored as {version}", parts.v));
    }
    Ok(LogEntry {
        version,
        origin: parts.origin,
        action: parts.action,
        changes: parts.changes,
        schema_version: crate::model::FIRST_SCHEMA_VERSION,
    })
}

/// A stored text's checksum: the first 16 bytes of its BLAKE3 hash.
pub(super) fn checksum(text: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::hash(text.as_bytes()).as_bytes()[..16]);
    out
}

/// A log entry's checksum: over its origin, action and changes (each part delimited, so no two
/// entries share their bytes).
pub(super) fn entry_checksum(e: &LogEntry) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    match &e.origin {
        Some(client) => hasher.update(b"c").update(client.as_bytes()),
        None => hasher.update(b"s"),
    };
    hasher.update(&[0]);
    match e.action {
        Some(action) => hasher.update(b"a").update(&action.to_le_bytes()),
        None => hasher.update(b"n"),
    };
    // Entries of the first schema version hash as before versions were recorded (changes
    // always start with '[', so the tag cannot be mistaken for them).
    if e.schema_version != crate::model::FIRST_SCHEMA_VERSION {
        hasher.update(b"v").update(&e.schema_version.to_le_bytes());
    }
    hasher.update(e.changes.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    out
}
