//! [`SqliteStore`]: one SQLite file (WAL mode) under a data directory, written by one dedicated
//! thread. Everything that is waiting when the thread wakes up goes into one transaction and one
//! commit (group commit): a burst of updates from many rooms costs one fsync. Room actors never
//! wait on the disk: they await a reply.

use super::{KnownClient, LogEntry, RoomSnapshot, Store, StoreCause, StoreError, StoredRoom, WriteBatch};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use schema::{checksum, entry_checksum, entry_of_frame, init, read_meta, schema_version};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

mod schema;

/// Beside the database: the store's id and its last commit number, rewritten after every commit
/// (not synced: after a power loss it can only be behind, never ahead). A database behind it
/// lost acknowledged commits (its WAL was lost or damaged, or an older copy was put in place),
/// and an empty database beside it was truncated or replaced: either is refused at start.
const COMMITS_FILE: &str = "objectsync.commits";

/// Requests waiting for the writer thread; senders wait when it is full.
const QUEUE_LEN_MAX: usize = 4096;

/// Requests handled per transaction at most.
const BATCH_MAX: usize = 1024;

/// Where a write's outcome goes, once committed.
type WriteReply = oneshot::Sender<Result<(), StoreError>>;

enum Request {
    Load {
        room: String,
        reply: oneshot::Sender<Result<Option<StoredRoom>, StoreError>>,
    },
    Append {
        room: String,
        batch: WriteBatch,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Snapshot {
        room: String,
        snapshot: String,
        version: u64,
        clients: Vec<KnownClient>,
        compact_to: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Rooms {
        reply: oneshot::Sender<Result<Vec<String>, StoreError>>,
    },
    Replace {
        room: String,
        snapshot: String,
        version: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// A durable store in `<dir>/objectsync.db`.
pub struct SqliteStore {
    requests: mpsc::Sender<Request>,
    secret: [u8; 32],
    path: PathBuf,
    /// `<dir>/objectsync.lock`, locked for as long as this store lives (the operating system
    /// releases it when the process dies, `kill -9` included): one writer per data directory.
    _lock: Option<std::fs::File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

/// A failure said in words (no backend error to keep).
fn io(room: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io { room: room.into(), reason: e.to_string() }
}

/// A backend error, kept as the source.
fn backend(room: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend { room: room.into(), source: StoreCause::new(e) }
}

/// A backend error about a file, which it names.
fn backend_at(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend { room: String::new(), source: StoreCause::new(e).context(path.display().to_string()) }
}

impl SqliteStore {
    /// Opens (or creates) the store in directory `dir` for writing; checks the schema version.
    /// Refused while another store (another server, an `import`) has the directory open for
    /// writing: two writers would mix their rooms' logs.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| backend_at(dir, e))?;
        let lock_path = dir.join("objectsync.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| backend_at(&lock_path, e))?;
        if let Err(e) = lock.try_lock() {
            return Err(StoreError::Locked { dir: dir.display().to_string(), reason: e.to_string() });
        }
        let mut store = Self::open_unlocked(dir, true)?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// Opens the store in `dir` to read it (`export`) while a server may be writing it: SQLite
    /// lets readers see the last committed state. Nothing must be written through it.
    pub fn open_for_reading(dir: &Path) -> Result<SqliteStore, StoreError> {
        if !dir.join("objectsync.db").exists() {
            return Err(io("", format!("{}: no objectsync.db here", dir.display())));
        }
        Self::open_unlocked(dir, false)
    }

    fn open_unlocked(dir: &Path, writable: bool) -> Result<SqliteStore, StoreError> {
        let path = dir.join("objectsync.db");
        let sidecar = dir.join(COMMITS_FILE);
        let empty = match std::fs::metadata(&path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(backend_at(&path, e)),
        };
        if writable && empty && sidecar.exists() {
            // Before anything is written: a new database would hide what happened.
            let what = "the database is missing or empty (deleted or truncated), but this directory held a store";
            return Err(damaged(&path, &format!("{what}; to start empty on purpose, delete {}", sidecar.display())));
        }
        let conn = Connection::open(&path).map_err(|e| backend_at(&path, e))?;
        let (secret, commits) = if writable { init(&conn, &path)? } else { read_meta(&conn, &path)? };
        if writable {
            check_commits(&path, &sidecar, &secret, commits)?;
        }
        let counter = CommitCounter { sidecar: writable.then_some(sidecar), id: store_id(&secret), commits };
        let (requests, rx) = mpsc::channel(QUEUE_LEN_MAX);
        std::thread::Builder::new()
            .name("objectsync-store".into())
            .spawn(move || writer(conn, rx, counter))
            .map_err(|e| backend("", e))?;
        Ok(SqliteStore { requests, secret, path, _lock: None })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is stored for `room` in the store in `dir`, as it is (nothing parsed or checked),
    /// read over a connection of its own: a room that cannot be loaded stays readable.
    pub fn read_raw(dir: &Path, room: &str) -> Result<RawRoom, StoreError> {
        let path = dir.join("objectsync.db");
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| backend_at(&path, e))?;
        let snapshot = conn
            .query_row("SELECT version, snapshot FROM rooms WHERE name = ?1", params![room], |r| {
                Ok(RawSnapshot { version: r.get::<_, i64>(0)? as u64, text: r.get(1)? })
            })
            .optional()
            .map_err(|e| backend(room, e))?;
        let log = read_raw_log(&conn, room)?;
        let clients = conn
            .prepare("SELECT id, last_action FROM clients WHERE room = ?1 ORDER BY id")
            .and_then(|mut stmt| {
                stmt.query_map(params![room], |r| {
                    Ok(KnownClient { id: r.get::<_, String>(0)?.into(), last_action: r.get::<_, i64>(1)? as u64 })
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| backend(room, e))?;
        Ok(RawRoom { room: room.to_owned(), snapshot, log, clients })
    }

    /// Replaces everything stored for `room` with `snapshot` (restoring a backup). Run it while
    /// no server has the room loaded.
    pub async fn replace_room(&self, room: &str, snapshot: &RoomSnapshot) -> Result<(), StoreError> {
        let text = serde_json::to_string(snapshot).map_err(|e| backend(room, e))?;
        let (room_name, version) = (room.to_owned(), snapshot.doc.version);
        self.ask(room, |reply| Request::Replace { room: room_name, snapshot: text, version, reply }).await
    }

    async fn ask<T>(
        &self,
        room: &str,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(make(reply)).await.map_err(|_| io(room, "the store's writer thread stopped"))?;
        rx.await.map_err(|_| io(room, "the store's writer thread stopped"))?
    }
}

/// A log row of schema 4 (`version, origin, action, changes, schema_version`, in that order).
fn log_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        version: r.get::<_, i64>(0)? as u64,
        origin: r.get::<_, Option<String>>(1)?.map(Into::into),
        action: r.get::<_, Option<i64>>(2)?.map(|a| a as u64),
        changes: r.get(3)?,
        schema_version: r.get::<_, i64>(4)? as u32,
    })
}

/// A room's log as stored, unchecked, from a file of this schema or an older one not yet
/// converted (read-only: its `update` messages are read as records in memory; one that is not
/// an update this server wrote is shown as it is, in `changes`).
fn read_raw_log(conn: &Connection, room: &str) -> Result<Vec<LogEntry>, StoreError> {
    let file_schema = schema_version(conn).map_err(|e| backend(room, e))?;
    let old = file_schema < 3;
    let query = match file_schema {
        ..3 => "SELECT version, frame FROM log WHERE room = ?1 ORDER BY version",
        3 => "SELECT version, origin, action, changes, 1 FROM log WHERE room = ?1 ORDER BY version",
        _ => "SELECT version, origin, action, changes, schema_version FROM log WHERE room = ?1 ORDER BY version",
    };
    conn.prepare(query)
        .and_then(|mut stmt| {
            stmt.query_map(params![room], |r| match old {
                false => log_entry(r),
                true => {
                    let (version, frame) = (r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?);
                    Ok(entry_of_frame(version, &frame).unwrap_or(LogEntry {
                        version,
                        origin: None,
                        action: None,
                        changes: frame,
                        schema_version: crate::model::FIRST_SCHEMA_VERSION,
                    }))
                }
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| backend(room, e))
}

/// A room's stored rows as they are ([`SqliteStore::read_raw`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RawRoom {
    /// The room's name.
    pub room: String,
    /// The latest snapshot, as stored.
    pub snapshot: Option<RawSnapshot>,
    /// The stored log entries, in version order.
    pub log: Vec<LogEntry>,
    /// The client records.
    pub clients: Vec<KnownClient>,
}

/// A stored snapshot's version and text, unparsed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RawSnapshot {
    /// The version it is stored as.
    pub version: u64,
    /// Its JSON text.
    pub text: String,
}

/// Names the store in the commits file (so another store's database put in place is noticed).
fn store_id(secret: &[u8; 32]) -> String {
    blake3::hash(secret).to_hex()[..16].to_owned()
}

/// A file that cannot be used as it is, with what to do.
fn damaged(path: &Path, what: &str) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        reason: format!(
            "{what}. Nothing was changed. Restore the file (and its -wal) from a backup; `objectsync export --raw` \
             prints what is still readable"
        ),
    }
}

/// Compares the database with the commits file beside it.
fn check_commits(path: &Path, sidecar: &Path, secret: &[u8; 32], commits: u64) -> Result<(), StoreError> {
    let text = match std::fs::read_to_string(sidecar) {
        Ok(text) => text,
        // None yet: a new store, or one from before the commits file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            tracing::warn!(path = %sidecar.display(), error = %e, "the commits file cannot be read; it will be rewritten");
            return Ok(());
        }
    };
    let mut words = text.split_whitespace();
    let (Some(id), Some(seen)) = (words.next(), words.next().and_then(|n| n.parse::<u64>().ok())) else {
        // Written by this program only: unreadable means it was edited or cut short by a crash
        // while written. It is rewritten at the next commit; say so rather than ignore it.
        tracing::warn!(path = %sidecar.display(), "the commits file is unreadable; it will be rewritten");
        return Ok(());
    };
    let on_purpose = format!("to use this file anyway (a backup restored on purpose), delete {}", sidecar.display());
    if id != store_id(secret) {
        let what = if commits == 0 {
            format!(
                "is empty: it was truncated or replaced, or its write-ahead log ({}-wal) was lost before its first \
                 checkpoint",
                path.display()
            )
        } else {
            "belongs to another store".to_owned()
        };
        return Err(damaged(
            path,
            &format!("the database {what}, but this directory held store {id} with {seen} commits; {on_purpose}"),
        ));
    }
    if commits < seen {
        return Err(damaged(
            path,
            &format!(
                "the database holds {commits} commits but {seen} were acknowledged: its write-ahead log ({}-wal) \
                 was lost or damaged, or an older copy was put in place; {on_purpose}",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The writer's commit number, and the file it is mirrored to.
struct CommitCounter {
    sidecar: Option<std::path::PathBuf>,
    id: String,
    commits: u64,
}

impl CommitCounter {
    /// Counts a commit in the transaction about to commit.
    fn count(&mut self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
        self.commits += 1;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('commits', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![self.commits as i64],
        )?;
        Ok(())
    }
    /// After the commit: the file beside the database says how far it got.
    fn committed(&self) {
        if let Some(path) = &self.sidecar {
            if let Err(e) = std::fs::write(path, format!("{} {}\n", self.id, self.commits)) {
                tracing::warn!(path = %path.display(), error = %e, "could not write the commits file");
            }
        }
    }
}

/// The writer thread: takes everything waiting, writes it in one transaction, commits once,
/// then answers.
fn writer(mut conn: Connection, mut rx: mpsc::Receiver<Request>, mut counter: CommitCounter) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                fail_all(batch, backend("", e));
                continue;
            }
        };
        let mut replies: Vec<(WriteReply, Result<(), StoreError>)> = Vec::new();
        for request in batch {
            handle(&tx, request, &mut replies);
        }
        commit(tx, &mut counter, replies);
    }
}

/// Handles one request inside the batch's transaction: reads are answered at once, each write
/// in a savepoint of its own, its outcome kept in `replies` until the commit.
fn handle(tx: &rusqlite::Transaction<'_>, request: Request, replies: &mut Vec<(WriteReply, Result<(), StoreError>)>) {
    match request {
        Request::Load { room, reply } => {
            let _ = reply.send(load(tx, &room));
        }
        Request::Rooms { reply } => {
            let r = tx
                .prepare("SELECT name FROM rooms UNION SELECT DISTINCT room FROM log ORDER BY 1")
                .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>())
                .map_err(|e| backend("", e));
            let _ = reply.send(r);
        }
        Request::Append { room, batch, reply } => {
            let r = in_savepoint(tx, |sp| append(sp, &room, &batch)).map_err(|e| backend(&room, e));
            replies.push((reply, r));
        }
        Request::Replace { room, snapshot, version, reply } => {
            let r = in_savepoint(tx, |sp| {
                sp.execute("DELETE FROM log WHERE room = ?1", params![room])?;
                sp.execute("DELETE FROM clients WHERE room = ?1", params![room])?;
                sp.execute("DELETE FROM rooms WHERE name = ?1", params![room])?;
                save_snapshot(sp, &room, &snapshot, version, &[], 0)
            })
            .map_err(|e| backend(&room, e));
            replies.push((reply, r));
        }
        Request::Snapshot { room, snapshot, version, clients, compact_to, reply } => {
            let r = in_savepoint(tx, |sp| save_snapshot(sp, &room, &snapshot, version, &clients, compact_to))
                .map_err(|e| backend(&room, e));
            replies.push((reply, r));
        }
    }
}

/// One commit (one fsync) for the whole batch; only then is any write acknowledged.
fn commit(
    tx: rusqlite::Transaction<'_>,
    counter: &mut CommitCounter,
    replies: Vec<(WriteReply, Result<(), StoreError>)>,
) {
    let wrote = !replies.is_empty();
    if wrote {
        if let Err(e) = counter.count(&tx) {
            fail_writes(replies, commit_failed(e));
            return;
        }
    }
    match tx.commit() {
        Ok(()) => {
            if wrote {
                counter.committed();
            }
            for (reply, r) in replies {
                let _ = reply.send(r);
            }
        }
        Err(e) => fail_writes(replies, commit_failed(e)),
    }
}

/// A failed commit: every write it held fails with the same error.
fn commit_failed(e: rusqlite::Error) -> StoreError {
    StoreError::Backend { room: String::new(), source: StoreCause::new(e).context("commit failed") }
}

/// Answers every write of a batch with `e`. (A reply whose asker is gone has no one to tell:
/// sending is allowed to fail, here and below.)
fn fail_writes(replies: Vec<(WriteReply, Result<(), StoreError>)>, e: StoreError) {
    for (reply, _) in replies {
        let _ = reply.send(Err(e.clone()));
    }
}

/// Answers every request of a batch with `e` (its transaction could not begin).
fn fail_all(batch: Vec<Request>, e: StoreError) {
    for request in batch {
        let e = e.clone();
        match request {
            Request::Load { reply, .. } => drop(reply.send(Err(e))),
            Request::Append { reply, .. } | Request::Snapshot { reply, .. } | Request::Replace { reply, .. } => {
                drop(reply.send(Err(e)))
            }
            Request::Rooms { reply } => drop(reply.send(Err(e))),
        }
    }
}

/// Runs `f` in a savepoint, so one request's failure does not undo the others of its batch.
fn in_savepoint(
    tx: &rusqlite::Transaction<'_>,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    tx.execute_batch("SAVEPOINT request")?;
    match f(tx) {
        Ok(()) => tx.execute_batch("RELEASE request"),
        Err(e) => {
            tx.execute_batch("ROLLBACK TO request; RELEASE request")?;
            Err(e)
        }
    }
}

fn append(conn: &rusqlite::Connection, room: &str, batch: &WriteBatch) -> rusqlite::Result<()> {
    // Idempotent by version: an entry already stored is not written again.
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO log (room, version, origin, action, changes, sum, schema_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in &batch.entries {
        let sum = entry_checksum(e).to_vec();
        insert.execute(params![
            room,
            e.version as i64,
            e.origin.as_deref(),
            e.action.map(|a| a as i64),
            e.changes,
            sum,
            i64::from(e.schema_version)
        ])?;
    }
    upsert_clients(conn, room, &batch.clients)
}

fn upsert_clients(conn: &rusqlite::Connection, room: &str, clients: &[KnownClient]) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO clients (room, id, last_action) VALUES (?1, ?2, ?3)
         ON CONFLICT (room, id) DO UPDATE SET last_action = max(last_action, excluded.last_action)",
    )?;
    for c in clients {
        upsert.execute(params![room, c.id.as_str(), c.last_action as i64])?;
    }
    Ok(())
}

fn save_snapshot(
    conn: &rusqlite::Connection,
    room: &str,
    snapshot: &str,
    version: u64,
    clients: &[KnownClient],
    compact_to: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO rooms (name, version, snapshot, sum) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET version = excluded.version, snapshot = excluded.snapshot, sum = excluded.sum
         WHERE excluded.version >= rooms.version",
        params![room, version as i64, snapshot, checksum(snapshot).to_vec()],
    )?;
    conn.execute("DELETE FROM log WHERE room = ?1 AND version <= ?2", params![room, compact_to as i64])?;
    // The snapshot lists every client the room still knows: forgotten ones go.
    conn.execute("DELETE FROM clients WHERE room = ?1", params![room])?;
    upsert_clients(conn, room, clients)
}

fn load(conn: &rusqlite::Connection, room: &str) -> Result<Option<StoredRoom>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { room: room.into(), reason };
    let snapshot: Option<(i64, String, Option<Vec<u8>>)> = conn
        .query_row("SELECT version, snapshot, sum FROM rooms WHERE name = ?1", params![room], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(|e| backend(room, e))?;
    let snapshot = match snapshot {
        None => None,
        Some((version, text, sum)) => {
            if sum.as_deref() != Some(&checksum(&text)[..]) {
                return Err(corrupt(format!("the snapshot of version {version} does not match its checksum")));
            }
            let s: RoomSnapshot = crate::protocol::decode_trusted(&text)
                .map_err(|e| corrupt(format!("the snapshot of version {version} does not parse: {e}")))?;
            if s.doc.version != version as u64 {
                return Err(corrupt(format!("the snapshot says version {} but is stored as {version}", s.doc.version)));
            }
            Some(s)
        }
    };
    // A file of schema 3 read without converting it (`migrate --dry-run`, `export` beside an older
    // build's server) has no schema_version column: its entries are all of version 1.
    let query = match schema_version(conn).map_err(|e| backend(room, e))? {
        ..=3 => "SELECT version, origin, action, changes, 1, sum FROM log WHERE room = ?1 ORDER BY version",
        _ => "SELECT version, origin, action, changes, schema_version, sum FROM log WHERE room = ?1 ORDER BY version",
    };
    let mut stmt = conn.prepare_cached(query).map_err(|e| backend(room, e))?;
    let rows = stmt
        .query_map(params![room], |r| Ok((log_entry(r)?, r.get::<_, Option<Vec<u8>>>(5)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| backend(room, e))?;
    let mut log = Vec::with_capacity(rows.len());
    for (entry, sum) in rows {
        if sum.as_deref() != Some(&entry_checksum(&entry)[..]) {
            return Err(corrupt(format!("the log entry of version {} does not match its checksum", entry.version)));
        }
        log.push(entry);
    }
    let mut stmt =
        conn.prepare_cached("SELECT id, last_action FROM clients WHERE room = ?1").map_err(|e| backend(room, e))?;
    let clients = stmt
        .query_map(params![room], |r| {
            Ok(KnownClient { id: r.get::<_, String>(0)?.into(), last_action: r.get::<_, i64>(1)? as u64 })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| backend(room, e))?;
    if snapshot.is_none() && log.is_empty() && clients.is_empty() {
        return Ok(None);
    }
    Ok(Some(StoredRoom { snapshot, log, clients }))
}

#[async_trait]
impl Store for SqliteStore {
    fn durable(&self) -> bool {
        true
    }
    fn secret(&self) -> [u8; 32] {
        self.secret
    }
    async fn load(&self, room: &str) -> Result<Option<StoredRoom>, StoreError> {
        let room_name = room.to_owned();
        self.ask(room, |reply| Request::Load { room: room_name, reply }).await
    }
    async fn append(&self, room: &str, batch: WriteBatch) -> Result<(), StoreError> {
        let room_name = room.to_owned();
        self.ask(room, |reply| Request::Append { room: room_name, batch, reply }).await
    }
    async fn save_snapshot(&self, room: &str, snapshot: &RoomSnapshot, compact_to: u64) -> Result<(), StoreError> {
        let text = serde_json::to_string(snapshot).map_err(|e| backend(room, e))?;
        let (room_name, version, clients) = (room.to_owned(), snapshot.doc.version, snapshot.clients.clone());
        self.ask(room, |reply| Request::Snapshot {
            room: room_name,
            snapshot: text,
            version,
            clients,
            compact_to,
            reply,
        })
        .await
    }
    async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        self.ask("", |reply| Request::Rooms { reply }).await
    }
}

#[cfg(test)]
mod tests {
    use super::schema::SCHEMA_VERSION;
    use super::*;
    use crate::model::{DocSnapshot, NodeSnapshot};

    fn snapshot(version: u64) -> RoomSnapshot {
        let root = NodeSnapshot {
            id: "root".into(),
            type_name: "Root".into(),
            attrs: Default::default(),
            children: Vec::new(),
        };
        RoomSnapshot {
            doc: DocSnapshot { version, next_server_id: 1, root },
            clients: Vec::new(),
            clients_floor: 0,
            schema: None,
        }
    }

    fn entry(version: u64) -> LogEntry {
        LogEntry { version, origin: Some("c1".into()), action: Some(version), changes: "[]".into(), schema_version: 1 }
    }

    #[tokio::test]
    async fn appends_survive_reopening_and_compact_behind_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = SqliteStore::open(dir.path()).expect("open");
            store.save_snapshot("r", &snapshot(0), 0).await.expect("snapshot");
            for v in 1..=10 {
                let clients = vec![KnownClient { id: "c1".into(), last_action: v }];
                store.append("r", WriteBatch { entries: vec![entry(v)], clients }).await.expect("append");
            }
            // Appending a version again changes nothing (idempotent by version).
            store.append("r", WriteBatch { entries: vec![entry(3)], clients: Vec::new() }).await.expect("again");
        }
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let r = store.load("r").await.expect("load").expect("room");
        assert_eq!(r.log.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
        assert_eq!(r.clients, vec![KnownClient { id: "c1".into(), last_action: 10 }]);
        store.save_snapshot("r", &snapshot(10), 7).await.expect("snapshot");
        let r = store.load("r").await.expect("load").expect("room");
        assert_eq!(r.snapshot.map(|s| s.doc.version), Some(10));
        assert_eq!(r.log.iter().map(|e| e.version).collect::<Vec<_>>(), vec![8, 9, 10]);
        assert_eq!(store.rooms().await.expect("rooms"), vec!["r".to_owned()]);
        assert!(store.load("other").await.expect("load").is_none());
    }

    /// Turns the store in `dir` into one of schema 2: its log holds whole `update` messages.
    fn make_schema_2(dir: &Path, frames: &[(&str, u64, String, bool)]) {
        let conn = Connection::open(dir.join("objectsync.db")).expect("conn");
        conn.execute_batch(
            "DROP TABLE log;
             CREATE TABLE log (room TEXT NOT NULL, version INTEGER NOT NULL, frame TEXT NOT NULL, sum BLOB,
                               PRIMARY KEY (room, version)) WITHOUT ROWID;
             PRAGMA user_version = 2;",
        )
        .expect("schema 2");
        for (room, version, frame, sound) in frames {
            let sum = if *sound { checksum(frame).to_vec() } else { vec![0; 16] };
            conn.execute("INSERT INTO log VALUES (?1, ?2, ?3, ?4)", params![room, *version as i64, frame, sum])
                .expect("insert");
        }
    }

    #[tokio::test]
    async fn a_file_of_schema_2_is_converted_once_and_damage_stays_visible() {
        use crate::model::{AppliedChange, Value};
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = SqliteStore::open(dir.path()).expect("open");
            for room in ["r", "bad", "odd"] {
                store.save_snapshot(room, &snapshot(0), 0).await.expect("snapshot");
            }
        }
        let set =
            |v: i64| AppliedChange::Set { obj: "n".into(), attr: "a".into(), old: Value::Null, new: Value::Int(v) };
        let update =
            |v: u64, origin: &str, action| crate::protocol::encode_update(v, origin, action, &[set(v as i64)], false);
        make_schema_2(
            dir.path(),
            &[
                ("r", 1, update(1, "c1", Some(5)), true),
                ("r", 2, update(2, "server", None), true),
                ("bad", 1, update(1, "c1", Some(1)), false),
                ("odd", 1, r#"{"t":"update","changes":[],"v":1,"origin":"server"}"#.into(), true),
            ],
        );
        // Read-only, before any conversion: the records as they will be.
        let raw = SqliteStore::read_raw(dir.path(), "r").expect("raw");
        assert_eq!(
            raw.log.iter().map(|e| (e.origin.as_deref(), e.action)).collect::<Vec<_>>(),
            [(Some("c1"), Some(5)), (None, None)]
        );
        let store = SqliteStore::open(dir.path()).expect("converted");
        let r = store.load("r").await.expect("loads").expect("room");
        let changes = |v: i64| crate::protocol::encode_changes(&[set(v)]);
        assert_eq!(
            r.log,
            vec![
                LogEntry {
                    version: 1,
                    origin: Some("c1".into()),
                    action: Some(5),
                    changes: changes(1),
                    schema_version: 1
                },
                LogEntry { version: 2, origin: None, action: None, changes: changes(2), schema_version: 1 },
            ]
        );
        // The messages clients got are the same bytes, made again from the records.
        let again = crate::protocol::encode_update_of(1, "c1", Some(5), &r.log[0].changes, false);
        assert_eq!(again, update(1, "c1", Some(5)));
        for room in ["bad", "odd"] {
            let e = store.load(room).await.map(|_| ()).map_err(|e| e.to_string());
            assert!(matches!(&e, Err(m) if m.contains(&format!("room {room}")) && m.contains("checksum")), "{e:?}");
        }
        drop(store);
        let conn = Connection::open(dir.path().join("objectsync.db")).expect("conn");
        assert_eq!(schema_version(&conn).expect("version"), SCHEMA_VERSION);
        let old: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'log_of_schema_2'", [], |r| r.get(0))
            .expect("count");
        assert_eq!(old, 0, "the old table is gone");
        drop(conn);
        // Opened again, nothing is converted twice.
        let store = SqliteStore::open(dir.path()).expect("reopened");
        assert_eq!(store.load("r").await.expect("loads").expect("room").log.len(), 2);
    }

    #[tokio::test]
    async fn log_entries_keep_their_schema_version_and_files_of_schema_3_read_as_version_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = SqliteStore::open(dir.path()).expect("open");
            store.save_snapshot("old", &snapshot(0), 0).await.expect("snapshot");
            store
                .append("old", WriteBatch { entries: vec![entry(1), entry(2)], clients: Vec::new() })
                .await
                .expect("old");
            store.save_snapshot("new", &snapshot(0), 0).await.expect("snapshot");
            let entries = vec![LogEntry { schema_version: 7, ..entry(1) }];
            store.append("new", WriteBatch { entries, clients: Vec::new() }).await.expect("new");
            let r = store.load("new").await.expect("load").expect("room");
            assert_eq!(r.log[0].schema_version, 7, "stored and checked by its checksum");
        }
        // The file as the previous build wrote it: schema 3, no schema_version column.
        let conn = Connection::open(dir.path().join("objectsync.db")).expect("conn");
        conn.execute_batch("ALTER TABLE log DROP COLUMN schema_version; PRAGMA user_version = 3;").expect("downgrade");
        drop(conn);
        // Read without converting (a dry run beside the old build's server), then converted.
        let reader = SqliteStore::open_for_reading(dir.path()).expect("read");
        let r = reader.load("old").await.expect("load").expect("room");
        assert_eq!(r.log.iter().map(|e| e.schema_version).collect::<Vec<_>>(), vec![1, 1]);
        drop(reader);
        let store = SqliteStore::open(dir.path()).expect("converted");
        let r = store.load("old").await.expect("load").expect("room");
        assert_eq!(r.log, vec![entry(1), entry(2)], "the checksums of version 1 entries hold as before");
        drop(store);
        let conn = Connection::open(dir.path().join("objectsync.db")).expect("conn");
        assert_eq!(schema::schema_version(&conn).expect("version"), schema::SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn a_file_from_a_newer_version_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(SqliteStore::open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join("objectsync.db")).expect("conn");
        conn.pragma_update(None, "user_version", 99).expect("pragma");
        drop(conn);
        let e = SqliteStore::open(dir.path()).map(|_| ()).map_err(|e| e.to_string());
        assert!(matches!(&e, Err(m) if m.contains("schema version 99") && m.contains("upgrade")), "{e:?}");
    }

    #[test]
    fn a_failure_of_the_file_system_keeps_its_error_and_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, "x").expect("write");
        let e = SqliteStore::open(&file).map(|_| ()).expect_err("a file is not a data directory");
        let StoreError::Backend { source, .. } = &e else { panic!("{e:?}") };
        assert!(source.error().downcast_ref::<std::io::Error>().is_some(), "{e:?}");
        assert!(e.to_string().contains("not-a-directory"), "{e}");
    }

    #[tokio::test]
    async fn a_garbled_snapshot_names_the_room_and_leaves_others_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.save_snapshot("bad", &snapshot(0), 0).await.expect("snapshot");
        store.save_snapshot("good", &snapshot(0), 0).await.expect("snapshot");
        let conn = Connection::open(dir.path().join("objectsync.db")).expect("conn");
        conn.execute("UPDATE rooms SET snapshot = '{\"doc\": garbage' WHERE name = 'bad'", []).expect("garble");
        let e = store.load("bad").await.map(|_| ()).map_err(|e| e.to_string());
        assert!(matches!(&e, Err(m) if m.contains("room bad") && m.contains("corrupt")), "{e:?}");
        assert!(store.load("good").await.expect("good loads").is_some());
    }
}
