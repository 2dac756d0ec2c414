//! Process metrics in Prometheus text format (`/metrics`), with `prometheus-client`.
//!
//! A crate-level concern: rooms count loads, updates, held bytes and slow clients; the server
//! counts clients and bytes in and renders them. Must not: know rooms, sessions or sockets (it
//! is counters only).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters and gauges of one server.
pub struct Metrics {
    registry: Registry,
    /// Rooms loaded.
    pub rooms: Gauge,
    /// Connected clients (after the handshake).
    pub clients: Gauge,
    /// Successful joins.
    pub joins: Counter,
    /// State updates applied.
    pub updates: Counter,
    /// Actions (and undo/redo) refused.
    pub rejects: Counter,
    /// Bytes received in WebSocket messages.
    pub bytes_in: Counter,
    /// Bytes queued to clients.
    pub bytes_out: Counter,
    /// Clients cut off because their outbound queue was full.
    pub slow_disconnects: Counter,
    /// Messages that could not be decoded, or were rate limited.
    pub bad_messages: Counter,
    /// Bytes waiting in every session's outbound queue (set when the metrics are read).
    pub outbound_bytes: Gauge,
    /// Bytes of messages waiting for the store to make their version durable (all rooms).
    pub held_bytes: Gauge,
    /// Stored rooms that could not be loaded (each attempt counts).
    pub room_load_failures: Counter,
    /// Stored rooms brought to this build's schema version when they loaded (and stored so).
    pub room_migrations: Counter,
    /// With a store shared by nodes: rooms this node took (a lease claimed at load).
    pub lease_claims: Counter,
    /// With a store shared by nodes: loads that found the room held by another node.
    pub held_elsewhere: Counter,
    /// With a store shared by nodes: writes refused because another node took the room.
    pub fenced_writes: Counter,
    /// In a cluster: rooms held by another node that this node relays to its sessions.
    pub relays: Gauge,
    /// In a cluster: client messages this node forwarded to the node holding their room.
    pub forwarded: Counter,
    /// In a cluster: gaps in a room's stream filled from the store.
    pub relay_gap_fills: Counter,
    /// In a cluster: times a relay moved its sessions to the room's next home (its holder went
    /// away, or its stream could not be followed).
    pub relay_resets: Counter,
    /// In a cluster: clients on other nodes connected to rooms this node holds.
    pub remote_clients: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("objectsync");
        let m = Metrics {
            rooms: Gauge::default(),
            clients: Gauge::default(),
            joins: Counter::default(),
            updates: Counter::default(),
            rejects: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            slow_disconnects: Counter::default(),
            bad_messages: Counter::default(),
            room_load_failures: Counter::default(),
            room_migrations: Counter::default(),
            lease_claims: Counter::default(),
            held_elsewhere: Counter::default(),
            fenced_writes: Counter::default(),
            relays: Gauge::default(),
            forwarded: Counter::default(),
            relay_gap_fills: Counter::default(),
            relay_resets: Counter::default(),
            remote_clients: Gauge::default(),
            outbound_bytes: Gauge::default(),
            held_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("rooms", "Rooms loaded", m.rooms.clone());
        registry.register("clients", "Connected clients", m.clients.clone());
        registry.register("joins", "Successful joins", m.joins.clone());
        registry.register("updates", "State updates applied", m.updates.clone());
        registry.register("rejects", "Actions refused", m.rejects.clone());
        registry.register("bytes_in", "Bytes received from clients", m.bytes_in.clone());
        registry.register("bytes_out", "Bytes queued to clients", m.bytes_out.clone());
        registry.register("slow_disconnects", "Clients cut off for not reading", m.slow_disconnects.clone());
        registry.register("bad_messages", "Undecodable or rate-limited messages", m.bad_messages.clone());
        registry.register(
            "room_load_failures",
            "Attempts to load a stored room that failed (see the ERROR log line)",
            m.room_load_failures.clone(),
        );
        registry.register(
            "room_migrations",
            "Stored rooms migrated to this build's schema version as they loaded",
            m.room_migrations.clone(),
        );
        registry.register(
            "outbound_bytes",
            "Bytes waiting in the clients' outbound queues (bounded by outbound_bytes_max)",
            m.outbound_bytes.clone(),
        );
        registry.register(
            "held_bytes",
            "Bytes of messages waiting for the store (bounded per room by room_held_bytes_max)",
            m.held_bytes.clone(),
        );
        registry.register("lease_claims", "Rooms this node took (a lease claimed at load)", m.lease_claims.clone());
        registry.register("held_elsewhere", "Loads that found the room held by another node", m.held_elsewhere.clone());
        registry.register("fenced_writes", "Writes refused: another node took the room", m.fenced_writes.clone());
        registry.register("relays", "Rooms held by another node, relayed to sessions here", m.relays.clone());
        registry.register("forwarded", "Client messages forwarded to the node holding their room", m.forwarded.clone());
        registry.register(
            "relay_gap_fills",
            "Gaps in a room's stream filled from the store",
            m.relay_gap_fills.clone(),
        );
        registry.register(
            "relay_resets",
            "Times a relay moved its sessions to the room's next home",
            m.relay_resets.clone(),
        );
        registry.register("remote_clients", "Clients on other nodes in rooms held here", m.remote_clients.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The metrics in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
