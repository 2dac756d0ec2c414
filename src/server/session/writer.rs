//! A session's writer: the room's frames (fragmented when large, batched per flush) and pings,
//! until the session closes; then what is still queued, and the close frame.

use super::Outgoing;
use crate::protocol::close;
use crate::room::{Closer, Frame, OutboundReceiver};
use crate::server::websocket::text_fragments;
use futures_util::SinkExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Frames written per flush: batches a burst into one syscall without starving pings.
const WRITE_BATCH_MAX: usize = 64;
/// Messages longer than this are written as several WebSocket fragments.
pub(super) const FRAGMENT_BYTES: usize = 16 * 1024;
/// A frame this large (a big room's welcome) leaves memory worth returning to the system when
/// its session ends.
const LARGE_FRAME_BYTES: usize = 256 * 1024;
/// How long the last queued frames and the close frame may take to go out.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes the room's frames and pings until the session closes; says whether any frame was
/// large.
pub(super) async fn write_loop<O: Outgoing>(
    mut sink: O,
    mut rx: OutboundReceiver,
    closer: Arc<Closer>,
    ping_interval: Duration,
) -> bool {
    let mut ping = tokio::time::interval(ping_interval);
    ping.reset();
    let mut sent_large = false;
    let closed = closer.token().cancelled();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            biased;
            _ = &mut closed => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                // A client that does not read blocks the write; the session must still end when
                // it is cut off (or the server stops), so the write waits on the closer too.
                let written = tokio::select! {
                    biased;
                    _ = &mut closed => break,
                    written = write_burst(&mut sink, &mut rx, frame) => written,
                };
                match written {
                    Ok(large) => sent_large |= large,
                    Err(_) => {
                        closer.close(close::NORMAL, "write failed");
                        return sent_large;
                    }
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    closer.close(close::NORMAL, "write failed");
                    return sent_large;
                }
            }
        }
    }
    flush_and_close(&mut sink, &mut rx, &closer).await;
    sent_large
}

/// Says why before closing: everything already queued goes out (an `error` explains a 4004; the
/// queue's bounds bound it, [`CLOSE_FLUSH_TIMEOUT`] the time), then the close frame. A client cut
/// off for being slow gets no more of what it could not read.
async fn flush_and_close<O: Outgoing>(sink: &mut O, rx: &mut OutboundReceiver, closer: &Closer) {
    let (code, reason) = closer.reason().cloned().unwrap_or((close::NORMAL, String::new()));
    let flush = async {
        if code != close::TOO_SLOW {
            while let Some(frame) = rx.try_recv() {
                if feed(sink, frame).await.is_err() {
                    return;
                }
            }
        }
        let _ = sink.send(close_message(code, &reason)).await;
        // Flushes anything tungstenite queued (such as its own answer to the client's close).
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, flush).await;
}

/// Writes `first` and what else is queued (up to [`WRITE_BATCH_MAX`] frames), then flushes: a
/// burst becomes one write. Says whether a frame was large.
async fn write_burst<O: Outgoing>(sink: &mut O, rx: &mut OutboundReceiver, first: Frame) -> Result<bool, WsError> {
    let mut large = first.len() >= LARGE_FRAME_BYTES;
    feed(sink, first).await?;
    let mut n = 1;
    while n < WRITE_BATCH_MAX {
        let Some(frame) = rx.try_recv() else { break };
        large |= frame.len() >= LARGE_FRAME_BYTES;
        feed(sink, frame).await?;
        n += 1;
    }
    sink.flush().await?;
    Ok(large)
}

/// Queues `frame` on the socket, in fragments of at most [`FRAGMENT_BYTES`] when it is larger:
/// the socket's write buffer then never grows past a few fragments.
async fn feed<O: Outgoing>(sink: &mut O, frame: Frame) -> Result<(), WsError> {
    for message in text_fragments(frame, FRAGMENT_BYTES) {
        sink.feed(message).await?;
    }
    Ok(())
}

/// A close frame with `code` and `reason`, cut to the 123 bytes a close reason may have.
pub(super) fn close_message(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason[..end].into() }))
}
