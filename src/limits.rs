//! Every limit of the engine, with its default and why. Checked at the edge of the layer that
//! owns it; each breach is a named error carrying the limit.

use serde::{Deserialize, Serialize};

/// Limits enforced by the model (per document). In serde form (a config file), missing fields
/// keep their defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelLimits {
    /// Changes in one transaction, reactions and reference clearing included: bounds the work
    /// and memory one action can cause. A client's action is also limited at the wire.
    pub action_changes_max: usize,
    /// Depth of the object tree (root = 0): keeps every walk (ancestors, cycle check, snapshot
    /// recursion) short and the stack safe.
    pub tree_depth_max: usize,
    /// Objects in one document: bounds a room's memory.
    pub objects_max: usize,
    /// Nesting of reactions triggering reactions: stops a reaction loop.
    pub reaction_depth_max: usize,
    /// Text edits kept per string topic for transforming late edits; an edit based on an older
    /// version is refused with `text_base_too_old`.
    pub text_history_len_max: usize,
    /// How many versions back a text edit or a list change by index may be based: older bases
    /// are refused (`text_base_too_old`, `list_base_too_old`). Histories of topics idle that
    /// long are dropped (checked every `TEXT_SWEEP_EVERY` commits), so idle topics cost
    /// nothing. A server lowers it to its `room_log_versions_max`: a restarted room rebuilds the
    /// histories from its stored log, which keeps that many versions.
    pub text_history_versions_max: u64,
    /// Bytes in one object id.
    pub id_len_max: usize,
    /// Bytes in one string value (a text topic, a dict string).
    pub string_len_max: usize,
    /// Nesting depth of a value (lists in dicts in lists...).
    pub value_depth_max: usize,
    /// Undo steps kept per client.
    pub undo_steps_max: usize,
    /// Transitions of one client on the same objects closer than this merge into one undo step
    /// (a drag is undone at once).
    pub undo_merge_window_ms: u64,
    /// Bytes one undo step may grow to by merging (a drag that goes on and on becomes several
    /// steps): bounds what one `undo` replays and broadcasts.
    pub undo_step_bytes_max: usize,
    /// Bytes of one client's undo and redo steps: past it, its oldest steps are dropped.
    pub undo_client_bytes_max: usize,
    /// Bytes of every client's steps in one room: past it, the histories of clients that left
    /// go first (the earliest to leave first), then the oldest steps of the largest history.
    pub undo_room_bytes_max: usize,
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits {
            action_changes_max: 10_000,
            tree_depth_max: 128,
            objects_max: 2_000_000,
            reaction_depth_max: 16,
            text_history_len_max: 512,
            text_history_versions_max: 10_000,
            id_len_max: 128,
            string_len_max: 1 << 20,
            value_depth_max: 32,
            undo_steps_max: 200,
            undo_merge_window_ms: 500,
            undo_step_bytes_max: 1 << 20,
            undo_client_bytes_max: 8 << 20,
            undo_room_bytes_max: 64 << 20,
        }
    }
}

impl ModelLimits {
    /// How deeply the JSON of the deepest document these limits accept nests, as the server
    /// writes it: a value `value_depth_max` deep in an object `tree_depth_max` deep, in a
    /// snapshot (two levels per object: the object and its parent's `children` array) inside a
    /// `welcome` inside a `batch`. The server refuses limits whose documents it could not read
    /// back ([`TRUSTED_JSON_DEPTH_MAX`](crate::protocol::TRUSTED_JSON_DEPTH_MAX)).
    pub fn json_depth_max(&self) -> usize {
        2 * self.tree_depth_max + self.value_depth_max + JSON_ENVELOPE_DEPTH
    }
}

/// Levels around a snapshot's root object: `batch` map and array, `welcome`, `snapshot`, the
/// root, an object's `attrs` (6), and two to spare.
const JSON_ENVELOPE_DEPTH: usize = 8;

/// How often (in commits) idle text histories are swept.
pub(crate) const TEXT_SWEEP_EVERY: u64 = 4096;

/// Limits enforced by the server (per connection, per room, per process). In serde form (a
/// config file), missing fields keep their defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// Bytes in one WebSocket message: bounds what one frame can make the server buffer.
    pub frame_bytes_max: usize,
    /// Changes in one client action (checked before the room sees it).
    pub action_changes_max: usize,
    /// Messages per second per client, sustained; bursts up to `message_burst_max`.
    pub messages_per_second_max: u32,
    /// Size of the per-client token bucket.
    pub message_burst_max: u32,
    /// Messages waiting to be written to one client. A client that lets it fill is cut off
    /// (close 4003) rather than holding memory or slowing the room; it can resume. Half of it
    /// bounds a resume's catch-up (more missed updates get a snapshot).
    pub outbound_queue_len_max: usize,
    /// Bytes waiting to be written to one client (an update shared by many clients counts for
    /// each): past it, the client is cut off (4003). An empty queue still takes one message of
    /// any size (a big room's welcome). Half of it bounds a resume's catch-up.
    pub outbound_queue_bytes_max: usize,
    /// Bytes waiting to be written to all clients of the server together: past it, the client
    /// whose message would go over is cut off (4003), so many slow clients cannot together hold
    /// more than this.
    pub outbound_bytes_max: usize,
    /// Serialized bytes of one presence state.
    pub presence_bytes_max: usize,
    /// Undecodable messages one connection may send before it is closed (4004).
    pub errors_max: u32,
    /// Time an HTTP connection has to send a whole request head (and, between requests on a
    /// kept-alive connection, the next one): a connection that never finishes its headers is
    /// closed instead of held; with TLS, the same deadline holds for the handshake. Applies to
    /// [`Server::serve`](crate::Server::serve) and [`Server::serve_tls`](crate::Server::serve_tls);
    /// an app that mounts the router in its own server sets its own.
    pub http_header_timeout_ms: u64,
    /// Time for a new connection to send `hello`.
    pub hello_timeout_ms: u64,
    /// A connection silent this long (not even pongs) is closed (4005).
    pub idle_timeout_ms: u64,
    /// Interval of server pings.
    pub ping_interval_ms: u64,
    /// Time a service has to answer before the caller gets `timeout`.
    pub service_timeout_ms: u64,
    /// Updates kept per room for resuming clients (older resumes get a snapshot).
    pub room_log_versions_max: usize,
    /// Bytes of updates kept per room for resuming clients.
    pub room_log_bytes_max: usize,
    /// Rooms loaded at once.
    pub rooms_max: usize,
    /// Clients connected to one room.
    pub clients_per_room_max: usize,
    /// Clients a room remembers (their last action id, so a re-sent action is never applied
    /// twice): past it, the disconnected ones whose last action is oldest are forgotten, and a
    /// later resume of one of them is a new client (a new id and a snapshot; its client drops the
    /// actions it sent, which may or may not have been applied). At least `clients_per_room_max`.
    pub room_known_clients_max: usize,
    /// Clients connected to the server.
    pub clients_max: usize,
    /// Connections open at once from one address (the TCP peer, or the forwarded address
    /// behind a trusted proxy): past it, a new one is closed with 4007, so one address cannot
    /// take every place of the server.
    pub connections_per_address_max: usize,
    /// Connections open at once of one user (by the identity the auth hook gave): past it, a
    /// new one is closed with 4007.
    pub connections_per_user_max: usize,
    /// Messages per second of one user across all its connections, sustained; bursts up to
    /// `user_message_burst_max`. Past it, `error` `rate_limited` (like the per-connection rate).
    pub user_messages_per_second_max: u32,
    /// Size of the per-user token bucket.
    pub user_message_burst_max: u32,
    /// Commands waiting in one room's inbox; senders wait when it is full (backpressure).
    pub room_inbox_len_max: usize,
    /// Bytes of client messages (actions, presence) waiting in one room's inbox, as received:
    /// past it, sessions wait before handing over more (and stop reading their sockets).
    pub room_inbox_bytes_max: usize,
    /// Bytes of a room's messages waiting for the store to make their version durable: past
    /// it, the room takes no more commands until the store catches up (its inbox fills, senders
    /// wait, sessions stop reading: a slow disk slows the room's writers instead of growing
    /// memory).
    pub room_held_bytes_max: usize,
    /// A room with no clients and no commands for this long is saved to the store and
    /// unloaded, so idle rooms cost no memory.
    pub room_unload_grace_ms: u64,
    /// In a cluster: bytes of messages this node has queued for the bus and not yet published
    /// (rooms' streams, requests to other nodes). Past it, a room's clients on other nodes are
    /// cut off (they resume) instead of growing memory.
    pub cluster_publish_bytes_max: usize,
    /// In a cluster: messages received from the bus and waiting for one room (its relay, or its
    /// requests from other nodes). Past it, messages are lost, the loss is seen, and the
    /// clients concerned resume.
    pub cluster_subscription_len_max: usize,
    /// In a cluster: the same bound in bytes.
    pub cluster_subscription_bytes_max: usize,
    /// In a cluster: how often a room's holder and the nodes relaying it say they are alive; one
    /// silent for three of these is given up on (its sessions resume).
    pub cluster_heartbeat_ms: u64,
}

impl ServerLimits {
    /// The first limit that cannot work (a zero where the server needs at least one), as its
    /// name and why.
    pub fn invalid(&self) -> Option<(&'static str, &'static str)> {
        [
            (self.room_inbox_len_max == 0, "room_inbox_len_max", "a room's inbox holds at least one command"),
            (self.ping_interval_ms == 0, "ping_interval_ms", "pings need an interval above 0"),
            (self.idle_timeout_ms < 4, "idle_timeout_ms", "idleness is checked every quarter of it: at least 4 ms"),
            (self.frame_bytes_max == 0, "frame_bytes_max", "no message would fit"),
            (self.clients_per_room_max == 0, "clients_per_room_max", "no client could join"),
            (self.rooms_max == 0, "rooms_max", "no room could load"),
            (self.connections_per_address_max == 0, "connections_per_address_max", "no client could connect"),
            (self.connections_per_user_max == 0, "connections_per_user_max", "no user could connect"),
            (self.cluster_heartbeat_ms == 0, "cluster_heartbeat_ms", "heartbeats need an interval above 0"),
        ]
        .into_iter()
        .find_map(|(bad, name, why)| bad.then_some((name, why)))
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            frame_bytes_max: 1 << 20,
            action_changes_max: 1000,
            messages_per_second_max: 200,
            message_burst_max: 400,
            outbound_queue_len_max: 32_768,
            outbound_queue_bytes_max: 16 << 20,
            outbound_bytes_max: 1 << 30,
            presence_bytes_max: 4096,
            errors_max: 10,
            http_header_timeout_ms: 10_000,
            hello_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            ping_interval_ms: 10_000,
            service_timeout_ms: 10_000,
            room_log_versions_max: 10_000,
            room_log_bytes_max: 64 << 20,
            rooms_max: 10_000,
            clients_per_room_max: 1000,
            room_known_clients_max: 100_000,
            clients_max: 20_000,
            connections_per_address_max: 2_000,
            connections_per_user_max: 100,
            user_messages_per_second_max: 400,
            user_message_burst_max: 800,
            room_inbox_len_max: 4096,
            room_inbox_bytes_max: 16 << 20,
            room_held_bytes_max: 32 << 20,
            room_unload_grace_ms: 30_000,
            cluster_publish_bytes_max: 64 << 20,
            cluster_subscription_len_max: 16_384,
            cluster_subscription_bytes_max: 64 << 20,
            cluster_heartbeat_ms: 1000,
        }
    }
}
