//! Sessions a relay moves to the room's next home when its holder went away ([`carry`]): each
//! joins wherever the room is now (this node, once it took the room, or another one through a
//! new relay) as a takeover — it resumes from the last version it was given, without a welcome,
//! and the actions whose outcome it had not been given are applied there if the room had not
//! processed them. Until then, what the session sends is kept (its actions, to be sent with the
//! takeover); after, the old relay passes its messages on. The client sees a pause, not a close.
//!
//! A session that cannot move in `MOVE_DEADLINE` (no node took the room), or that the new home
//! refuses (its versions are no longer in the log), is closed with 4008 and resumes by itself.
//!
//! Must not: pass a session's messages on before its takeover was accepted.

use super::handle::{ConnectionId, Takeover};
use super::{ClientId, Command, JoinError, JoinRequest, Registry, RoomHandle, SessionLink};
use crate::protocol::{self, close, ClientMessage, Resume};
use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a session waits for the room's next home (the lease of a dead holder runs out
/// first) before it is closed to resume by itself.
const MOVE_DEADLINE: Duration = Duration::from_secs(60);
/// Between attempts to find the room's next home.
const RETRY: Duration = Duration::from_millis(100);

/// A session on its way to the room's next home.
pub(crate) struct Moving {
    pub(crate) client: ClientId,
    pub(crate) link: SessionLink,
    /// What it joined with.
    pub(crate) request: JoinRequest,
    /// Where it resumes from.
    pub(crate) resume: Resume,
    /// Its actions whose outcome it has not been given: (id, text).
    pub(crate) resend: Vec<(u64, String)>,
}

/// Moves `moving` to where room `name` is now, then passes on what they send (read from `rx`,
/// the old relay's inbox) until every one of them left.
pub(crate) async fn carry(
    name: &str,
    registry: Weak<Registry>,
    rx: &mut mpsc::Receiver<Command>,
    mut waiting: Vec<Moving>,
    shutdown: CancellationToken,
) {
    tracing::info!(sessions = waiting.len(), "moving sessions to the room's next home");
    let deadline = Instant::now() + MOVE_DEADLINE;
    // Moved: the client's connection and its new home.
    let mut moved: HashMap<ClientId, (ConnectionId, RoomHandle)> = HashMap::new();
    let mut retry = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            cmd = rx.recv() => match cmd {
                Some(cmd) => pass_on(cmd, &mut waiting, &mut moved).await,
                None => break,
            },
            _ = retry.tick(), if !waiting.is_empty() => {
                let Some(registry) = registry.upgrade() else { break };
                if let Ok(home) = registry.room(name).await {
                    waiting = take_over(&home, waiting, &mut moved).await;
                }
                if Instant::now() >= deadline {
                    for m in waiting.drain(..) {
                        m.link.closer.close(close::ROOM_MOVED, "no node took the room in time: resume");
                    }
                }
            }
        }
        if waiting.is_empty() && moved.is_empty() {
            break;
        }
    }
    for m in waiting {
        m.link.closer.close(close::ROOM_MOVED, "the room is moving: resume");
    }
}

/// Joins each of `waiting` at `home` as a takeover; returns those to try again.
async fn take_over(
    home: &RoomHandle,
    waiting: Vec<Moving>,
    moved: &mut HashMap<ClientId, (ConnectionId, RoomHandle)>,
) -> Vec<Moving> {
    let mut again = Vec::new();
    for m in waiting {
        let (reply, answer) = oneshot::channel();
        let request = JoinRequest {
            resume: Some(m.resume.clone()),
            read_only: m.request.read_only,
            batch: m.request.batch,
            compact_snapshots: m.request.compact_snapshots,
            identity: m.request.identity.clone(),
            takeover: Some(Takeover { resend: m.resend.clone() }),
        };
        if home.send(Command::Join { request, link: m.link.clone(), reply }).await.is_err() {
            again.push(m);
            continue;
        }
        match answer.await {
            Ok(Ok(_)) => {
                tracing::info!(client = %m.client, "a session moved to the room's next home");
                moved.insert(m.client, (m.link.connection, home.clone()));
            }
            Ok(Err(JoinError::Unloaded)) | Err(_) => again.push(m),
            Ok(Err(e)) => {
                m.link.closer.close(close::ROOM_MOVED, format!("{e}: resume"));
            }
        }
    }
    again
}

/// A command of a moving or moved session: kept until it moved, then passed to its new home.
async fn pass_on(cmd: Command, waiting: &mut Vec<Moving>, moved: &mut HashMap<ClientId, (ConnectionId, RoomHandle)>) {
    match cmd {
        Command::Forward { client, text, action, permit } => {
            if let Some((_, home)) = moved.get(&client) {
                let _ = home.send(Command::Forward { client, text, action, permit }).await;
            } else if let Some(m) = waiting.iter_mut().find(|m| m.client == client) {
                match (action, protocol::decode_client(&text)) {
                    (Some(id), _) => m.resend.push((id, text)),
                    // A call cannot wait: it is answered, and the client may call again.
                    (None, Ok(ClientMessage::Call { id, .. })) => {
                        let reason = "the room is moving to another node; call again";
                        let _ = m.link.out.try_queue(protocol::encode_result(id, Err(("unavailable", reason))).into());
                    }
                    // A presence is dropped: the next one replaces it.
                    _ => {}
                }
            }
        }
        Command::Leave { client, connection } => {
            waiting.retain(|m| m.client != client || m.link.connection != connection);
            if moved.get(&client).is_some_and(|(c, _)| *c == connection) {
                if let Some((_, home)) = moved.remove(&client) {
                    let _ = home.send(Command::Leave { client, connection }).await;
                }
            }
        }
        Command::Join { reply, .. } => {
            let _ = reply.send(Err(JoinError::Unloaded));
        }
        _ => {}
    }
}
