//! [`PostgresStore`]: rooms in one PostgreSQL database shared by several nodes (feature
//! `postgres`). A room is written by one node at a time, the node holding its lease: a row
//! (room, owner, epoch, expiry) claimed when the room is loaded, renewed in the background and
//! released when the room is saved for the last time. Every write of the room checks, in its
//! own transaction and under a lock of that row, that the lease still has the epoch this node
//! claimed: a node that lost the room (paused, cut off, slow past its lease, after another node
//! claimed it) can never write it again. The epoch is the fencing token; the expiry only says
//! when another node may claim.
//!
//! Acknowledgement after commit, as with SQLite: `append` returns once its transaction is
//! committed (PostgreSQL's WAL groups the commits of concurrent rooms into one flush).

use super::{KnownClient, LogEntry, RoomSnapshot, Store, StoreCause, StoreError, StoredRoom, WriteBatch};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::NoTls;

/// The schema this build creates and reads (`objectsync_meta`'s `schema` row).
const SCHEMA_VERSION: i64 = 1;

/// Serializes schema migrations of nodes starting at once (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x006f_626a_7379_6e63; // "objsync"

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objectsync_meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS objectsync_leases (
    room TEXT PRIMARY KEY, owner TEXT NOT NULL, epoch BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS objectsync_rooms (room TEXT PRIMARY KEY, version BIGINT NOT NULL, snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objectsync_log (
    room TEXT NOT NULL, version BIGINT NOT NULL, origin TEXT, action BIGINT, changes TEXT NOT NULL,
    PRIMARY KEY (room, version));
ALTER TABLE objectsync_log ADD COLUMN IF NOT EXISTS schema_version BIGINT NOT NULL DEFAULT 1;
CREATE TABLE IF NOT EXISTS objectsync_clients (
    room TEXT NOT NULL, id TEXT NOT NULL, last_action BIGINT NOT NULL, PRIMARY KEY (room, id));
";

/// How a [`PostgresStore`] takes part among the nodes.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// This node's name, unique among the nodes (leases name their owner by it).
    pub node_id: String,
    /// How long a claimed or renewed lease runs: after a node stops renewing (it died, it is cut
    /// off), its rooms can be claimed by another node this long after its last renewal.
    pub lease_ms: u64,
    /// How often this node renews the leases of its rooms (well under `lease_ms`).
    pub lease_renew_ms: u64,
    /// Connections to the database at most.
    pub connections_max: usize,
}

impl PostgresOptions {
    /// Defaults for `node_id`: a 10 s lease renewed every 2 s, 16 connections.
    pub fn new(node_id: impl Into<String>) -> Self {
        PostgresOptions { node_id: node_id.into(), lease_ms: 10_000, lease_renew_ms: 2_000, connections_max: 16 }
    }
}

/// Rooms in PostgreSQL, shared by several nodes; see the module docs.
pub struct PostgresStore {
    pool: Pool,
    options: PostgresOptions,
    secret: [u8; 32],
    /// The rooms this node holds, with the epoch it claimed each at.
    held: Arc<Mutex<HashMap<String, i64>>>,
    renewal: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("node_id", &self.options.node_id).finish()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

fn backend(room: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend { room: room.to_owned(), source: StoreCause::new(e).context("PostgreSQL") }
}

fn pool_error(room: &str, e: deadpool_postgres::PoolError) -> StoreError {
    backend(room, e)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`), creates or checks
    /// its tables, and starts renewing this node's leases.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| backend("", e))?;
        // A node frozen inside a transaction (SIGSTOP, a stalled VM) would hold its lease row's
        // lock, so no other node could claim the room after the lease ran out: PostgreSQL ends
        // such a transaction once it has been idle as long as a lease (a healthy one never is),
        // and the frozen node's write fails when it wakes, as a fenced one.
        let idle = format!("-c idle_in_transaction_session_timeout={}", options.lease_ms.max(1));
        let options_now = config.get_options().map(|o| format!("{o} {idle}")).unwrap_or(idle);
        config.options(options_now);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool =
            Pool::builder(manager).max_size(options.connections_max.max(1)).build().map_err(|e| backend("", e))?;
        let secret = {
            let mut client = pool.get().await.map_err(|e| pool_error("", e))?;
            migrate(&mut client).await?
        };
        let held = Arc::new(Mutex::new(HashMap::new()));
        let renewal = tokio::spawn(renew_leases(pool.clone(), options.clone(), held.clone()));
        Ok(PostgresStore { pool, options, secret, held, renewal })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.options.node_id
    }

    fn epoch_of(&self, room: &str) -> Result<i64, StoreError> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(room).copied().ok_or_else(|| StoreError::Fenced {
            room: room.to_owned(),
            reason: "this node has not claimed it (or lost it at a renewal)".into(),
        })
    }

    /// Claims the room's lease: a new epoch if it is free, expired, or already this node's.
    async fn claim(&self, tx: &impl GenericClient, room: &str) -> Result<i64, StoreError> {
        let lease_ms = self.options.lease_ms as f64;
        let node = &self.options.node_id;
        let claimed = tx
            .query_opt(
                "INSERT INTO objectsync_leases (room, owner, epoch, expires_at)
                 VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
                 ON CONFLICT (room) DO UPDATE
                   SET owner = $2, epoch = objectsync_leases.epoch + 1, expires_at = excluded.expires_at
                   WHERE objectsync_leases.expires_at < now() OR objectsync_leases.owner = $2
                 RETURNING epoch",
                &[&room, node, &lease_ms],
            )
            .await
            .map_err(|e| backend(room, e))?;
        match claimed {
            Some(row) => Ok(row.get(0)),
            None => {
                let row = tx
                    .query_one(
                        "SELECT owner, greatest(0, (extract(epoch FROM expires_at - now()) * 1000))::bigint
                         FROM objectsync_leases WHERE room = $1",
                        &[&room],
                    )
                    .await
                    .map_err(|e| backend(room, e))?;
                Err(StoreError::HeldElsewhere {
                    room: room.to_owned(),
                    owner: row.get(0),
                    left_ms: row.get::<_, i64>(1) as u64,
                })
            }
        }
    }

    /// [`Store::append`] in one fenced transaction.
    async fn append_fenced(&self, room: &str, batch: WriteBatch) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(|e| pool_error(room, e))?;
        let tx = client.transaction().await.map_err(|e| backend(room, e))?;
        self.fence(&tx, room).await?;
        // The whole batch in one statement (one round trip, however many updates it holds).
        let versions: Vec<i64> = batch.entries.iter().map(|e| e.version as i64).collect();
        let origins: Vec<Option<&str>> = batch.entries.iter().map(|e| e.origin.as_deref()).collect();
        let actions: Vec<Option<i64>> = batch.entries.iter().map(|e| e.action.map(|a| a as i64)).collect();
        let changes: Vec<&str> = batch.entries.iter().map(|e| e.changes.as_str()).collect();
        let schemas: Vec<i64> = batch.entries.iter().map(|e| i64::from(e.schema_version)).collect();
        if !versions.is_empty() {
            tx.execute(
                "INSERT INTO objectsync_log (room, version, origin, action, changes, schema_version)
                 SELECT $1, * FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::BIGINT[])
                 ON CONFLICT (room, version) DO NOTHING",
                &[&room, &versions, &origins, &actions, &changes, &schemas],
            )
            .await
            .map_err(|e| backend(room, e))?;
        }
        upsert_clients(&tx, room, &batch.clients).await?;
        tx.commit().await.map_err(|e| backend(room, e))
    }

    /// [`Store::save_snapshot`] in one fenced transaction.
    async fn save_snapshot_fenced(
        &self,
        room: &str,
        snapshot: &RoomSnapshot,
        compact_to: u64,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(snapshot).map_err(|e| backend(room, e))?;
        let mut client = self.pool.get().await.map_err(|e| pool_error(room, e))?;
        let tx = client.transaction().await.map_err(|e| backend(room, e))?;
        self.fence(&tx, room).await?;
        tx.execute(
            "INSERT INTO objectsync_rooms (room, version, snapshot) VALUES ($1, $2, $3)
             ON CONFLICT (room) DO UPDATE SET version = excluded.version, snapshot = excluded.snapshot
             WHERE excluded.version >= objectsync_rooms.version",
            &[&room, &(snapshot.doc.version as i64), &text],
        )
        .await
        .map_err(|e| backend(room, e))?;
        tx.execute("DELETE FROM objectsync_log WHERE room = $1 AND version <= $2", &[&room, &(compact_to as i64)])
            .await
            .map_err(|e| backend(room, e))?;
        // The snapshot lists every client the room still knows: forgotten ones go.
        tx.execute("DELETE FROM objectsync_clients WHERE room = $1", &[&room]).await.map_err(|e| backend(room, e))?;
        upsert_clients(&tx, room, &snapshot.clients).await?;
        tx.commit().await.map_err(|e| backend(room, e))
    }

    /// A write that failed for the database's sake (its connection ended: PostgreSQL ends a
    /// transaction left idle as long as a lease, as a frozen node's is) is said as fenced when
    /// the room's lease has meanwhile gone to another node: the room was lost, not the storage.
    async fn fenced_if_lost(&self, room: &str, written: Result<(), StoreError>) -> Result<(), StoreError> {
        let Err(failed @ StoreError::Backend { .. }) = written else { return written };
        let Ok(epoch) = self.epoch_of(room) else { return Err(failed) };
        let Ok(client) = self.pool.get().await else { return Err(failed) };
        let Ok(row) = client.query_opt("SELECT owner, epoch FROM objectsync_leases WHERE room = $1", &[&room]).await
        else {
            return Err(failed);
        };
        let ours =
            row.as_ref().is_some_and(|r| r.get::<_, String>(0) == self.options.node_id && r.get::<_, i64>(1) == epoch);
        if ours {
            return Err(failed);
        }
        self.forget(room);
        let holder = row.map_or("no node".to_owned(), |r| {
            format!("node {} at epoch {}", r.get::<_, String>(0), r.get::<_, i64>(1))
        });
        Err(StoreError::Fenced {
            room: room.to_owned(),
            reason: format!("the write failed ({failed}) and {holder} holds it now; this node claimed epoch {epoch}"),
        })
    }

    /// In `tx`: locks the room's lease row and checks that it still has this node's epoch.
    async fn fence(&self, tx: &impl GenericClient, room: &str) -> Result<(), StoreError> {
        let epoch = self.epoch_of(room)?;
        let row = tx
            .query_opt("SELECT owner, epoch FROM objectsync_leases WHERE room = $1 FOR UPDATE", &[&room])
            .await
            .map_err(|e| backend(room, e))?;
        match row {
            Some(r) if r.get::<_, String>(0) == self.options.node_id && r.get::<_, i64>(1) == epoch => Ok(()),
            Some(r) => {
                self.forget(room);
                let (owner, now): (String, i64) = (r.get(0), r.get(1));
                Err(StoreError::Fenced {
                    room: room.to_owned(),
                    reason: format!("node {owner} holds it at epoch {now}; this node claimed epoch {epoch}"),
                })
            }
            None => {
                self.forget(room);
                Err(StoreError::Fenced { room: room.to_owned(), reason: "its lease was released".into() })
            }
        }
    }

    fn forget(&self, room: &str) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(room);
    }
}

/// Creates the tables (or checks them) under a lock, so that nodes starting at once do it once;
/// returns the store's secret (made by the first node).
async fn migrate(client: &mut deadpool_postgres::Client) -> Result<[u8; 32], StoreError> {
    let tx = client.transaction().await.map_err(|e| backend("", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(|e| backend("", e))?;
    tx.batch_execute(SCHEMA).await.map_err(|e| backend("", e))?;
    let version = tx
        .query_opt("SELECT value FROM objectsync_meta WHERE key = 'schema'", &[])
        .await
        .map_err(|e| backend("", e))?
        .map(|r| r.get::<_, Vec<u8>>(0));
    match version.as_deref().map(|v| String::from_utf8_lossy(v).parse::<i64>()) {
        None => {
            tx.execute(
                "INSERT INTO objectsync_meta (key, value) VALUES ('schema', $1)",
                &[&SCHEMA_VERSION.to_string().into_bytes()],
            )
            .await
            .map_err(|e| backend("", e))?;
        }
        Some(Ok(found)) if found > SCHEMA_VERSION => {
            return Err(StoreError::NewerSchema { path: "PostgreSQL".into(), found, supported: SCHEMA_VERSION });
        }
        Some(Ok(_)) => {}
        Some(Err(e)) => return Err(backend("", e)),
    }
    let secret: Option<Vec<u8>> = tx
        .query_opt("SELECT value FROM objectsync_meta WHERE key = 'secret'", &[])
        .await
        .map_err(|e| backend("", e))?
        .map(|r| r.get(0));
    let secret = match secret {
        Some(s) => s,
        None => {
            let s: [u8; 32] = rand::random();
            tx.execute("INSERT INTO objectsync_meta (key, value) VALUES ('secret', $1)", &[&s.to_vec()])
                .await
                .map_err(|e| backend("", e))?;
            s.to_vec()
        }
    };
    tx.commit().await.map_err(|e| backend("", e))?;
    <[u8; 32]>::try_from(secret.as_slice()).map_err(|_| StoreError::Damaged {
        path: "PostgreSQL".into(),
        reason: "the store's secret has the wrong length".into(),
    })
}

/// Every `lease_renew_ms`: extends the leases this node still holds at the epochs it claimed;
/// a room whose lease another node took is forgotten (its writes are refused anyway).
async fn renew_leases(pool: Pool, options: PostgresOptions, held: Arc<Mutex<HashMap<String, i64>>>) {
    let mut every = tokio::time::interval(Duration::from_millis(options.lease_renew_ms.max(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (rooms, epochs): (Vec<String>, Vec<i64>) =
            held.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(r, e)| (r.clone(), *e)).unzip();
        if rooms.is_empty() {
            continue;
        }
        let renewed = async {
            let client = pool.get().await.map_err(|e| pool_error("", e))?;
            client
                .query(
                    "UPDATE objectsync_leases AS l SET expires_at = now() + $2 * interval '1 millisecond'
                     FROM unnest($3::text[], $4::bigint[]) AS h(room, epoch)
                     WHERE l.room = h.room AND l.epoch = h.epoch AND l.owner = $1
                     RETURNING l.room",
                    &[&options.node_id, &(options.lease_ms as f64), &rooms, &epochs],
                )
                .await
                .map_err(|e| backend("", e))
        };
        match renewed.await {
            Ok(rows) => {
                let kept: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
                let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
                for room in rooms.iter().filter(|r| !kept.contains(*r)) {
                    tracing::warn!(%room, "lost the room's lease to another node");
                    held.remove(room);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the leases (retrying)"),
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn durable(&self) -> bool {
        true
    }

    fn secret(&self) -> [u8; 32] {
        self.secret
    }

    async fn load(&self, room: &str) -> Result<Option<StoredRoom>, StoreError> {
        let mut client = self.pool.get().await.map_err(|e| pool_error(room, e))?;
        let tx = client.transaction().await.map_err(|e| backend(room, e))?;
        let epoch = self.claim(&tx, room).await?;
        let stored = read_room(&tx, room).await?;
        tx.commit().await.map_err(|e| backend(room, e))?;
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(room.to_owned(), epoch);
        Ok(stored)
    }

    async fn append(&self, room: &str, batch: WriteBatch) -> Result<(), StoreError> {
        let written = self.append_fenced(room, batch).await;
        self.fenced_if_lost(room, written).await
    }

    async fn save_snapshot(&self, room: &str, snapshot: &RoomSnapshot, compact_to: u64) -> Result<(), StoreError> {
        let written = self.save_snapshot_fenced(room, snapshot, compact_to).await;
        self.fenced_if_lost(room, written).await
    }

    async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        let client = self.pool.get().await.map_err(|e| pool_error("", e))?;
        let rows = client
            .query("SELECT room FROM objectsync_rooms UNION SELECT DISTINCT room FROM objectsync_log ORDER BY 1", &[])
            .await
            .map_err(|e| backend("", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn epoch(&self, room: &str) -> Option<u64> {
        self.epoch_of(room).ok().and_then(|e| u64::try_from(e).ok())
    }

    async fn log_after(&self, room: &str, after: u64, max: usize) -> Result<Option<Vec<LogEntry>>, StoreError> {
        let client = self.pool.get().await.map_err(|e| pool_error(room, e))?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT version, origin, action, changes, schema_version FROM objectsync_log WHERE room = $1 AND version > $2
                 ORDER BY version LIMIT $3",
                &[&room, &(after as i64), &max],
            )
            .await
            .map_err(|e| backend(room, e))?;
        Ok(Some(rows.iter().map(log_entry).collect()))
    }

    async fn release(&self, room: &str) -> Result<(), StoreError> {
        let Ok(epoch) = self.epoch_of(room) else { return Ok(()) };
        self.forget(room);
        let client = self.pool.get().await.map_err(|e| pool_error(room, e))?;
        client
            .execute(
                "DELETE FROM objectsync_leases WHERE room = $1 AND owner = $2 AND epoch = $3",
                &[&room, &self.options.node_id, &epoch],
            )
            .await
            .map_err(|e| backend(room, e))?;
        Ok(())
    }
}

async fn read_room(tx: &impl GenericClient, room: &str) -> Result<Option<StoredRoom>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { room: room.into(), reason };
    let snapshot = match tx
        .query_opt("SELECT version, snapshot FROM objectsync_rooms WHERE room = $1", &[&room])
        .await
        .map_err(|e| backend(room, e))?
    {
        None => None,
        Some(row) => {
            let (version, text): (i64, String) = (row.get(0), row.get(1));
            let s: RoomSnapshot = crate::protocol::decode_trusted(&text)
                .map_err(|e| corrupt(format!("the snapshot of version {version} does not parse: {e}")))?;
            if s.doc.version != version as u64 {
                return Err(corrupt(format!("the snapshot says version {} but is stored as {version}", s.doc.version)));
            }
            Some(s)
        }
    };
    let log: Vec<LogEntry> = tx
        .query("SELECT version, origin, action, changes, schema_version FROM objectsync_log WHERE room = $1 ORDER BY version", &[&room])
        .await
        .map_err(|e| backend(room, e))?
        .iter()
        .map(log_entry)
        .collect();
    let clients: Vec<KnownClient> = tx
        .query("SELECT id, last_action FROM objectsync_clients WHERE room = $1 ORDER BY id", &[&room])
        .await
        .map_err(|e| backend(room, e))?
        .iter()
        .map(|r| KnownClient { id: r.get::<_, String>(0).into(), last_action: r.get::<_, i64>(1) as u64 })
        .collect();
    if snapshot.is_none() && log.is_empty() && clients.is_empty() {
        return Ok(None);
    }
    Ok(Some(StoredRoom { snapshot, log, clients }))
}

/// A row of `SELECT version, origin, action, changes, schema_version FROM objectsync_log`.
fn log_entry(r: &tokio_postgres::Row) -> LogEntry {
    LogEntry {
        version: r.get::<_, i64>(0) as u64,
        origin: r.get::<_, Option<String>>(1).map(Into::into),
        action: r.get::<_, Option<i64>>(2).map(|a| a as u64),
        changes: r.get(3),
        schema_version: r.get::<_, i64>(4) as u32,
    }
}

/// Records clients' last actions (a client's highest wins), in one statement.
async fn upsert_clients(tx: &impl GenericClient, room: &str, clients: &[KnownClient]) -> Result<(), StoreError> {
    if clients.is_empty() {
        return Ok(());
    }
    // One row per client (a batch may name one several times): its highest action.
    let mut last: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for c in clients {
        let a = last.entry(c.id.as_str()).or_insert(0);
        *a = (*a).max(c.last_action as i64);
    }
    let ids: Vec<&str> = last.keys().copied().collect();
    let actions: Vec<i64> = last.values().copied().collect();
    tx.execute(
        "INSERT INTO objectsync_clients (room, id, last_action) SELECT $1, * FROM UNNEST($2::TEXT[], $3::BIGINT[])
         ON CONFLICT (room, id) DO UPDATE SET last_action = greatest(objectsync_clients.last_action, excluded.last_action)",
        &[&room, &ids, &actions],
    )
    .await
    .map_err(|e| backend(room, e))?;
    Ok(())
}
