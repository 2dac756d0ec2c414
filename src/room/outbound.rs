//! A session's outbound queue, bounded in messages and in bytes: per session
//! (`outbound_queue_len_max`, `outbound_queue_bytes_max`) and over the whole server
//! (`outbound_bytes_max`). The room and the session's own replies queue into it without waiting;
//! a queue that would go over a bound refuses, and its session is cut off (close 4003) instead
//! of holding memory or slowing the room. The session's writer takes frames out.
//!
//! An update's bytes are shared by every session, but each queue counts them: what a queue
//! holds stays alive for as long as it waits there.

use super::Frame;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes queued to every session of a server, against `outbound_bytes_max`.
#[derive(Debug)]
pub(crate) struct OutboundBudget {
    bytes: AtomicUsize,
    max: usize,
}

impl OutboundBudget {
    pub(crate) fn new(max: usize) -> Arc<OutboundBudget> {
        Arc::new(OutboundBudget { bytes: AtomicUsize::new(0), max })
    }
    /// Bytes queued now, over every session.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueFull {
    /// The session's own bound (messages or bytes) would be passed.
    Session,
    /// The server's bound over every session would be passed.
    Server,
    /// The session's writer has ended.
    Closed,
}

/// The sending side (cloned into the room and the session's service tasks).
#[derive(Clone, Debug)]
pub(crate) struct OutboundSender {
    tx: mpsc::Sender<Frame>,
    bytes: Arc<AtomicUsize>,
    bytes_max: usize,
    budget: Arc<OutboundBudget>,
}

/// The writer's side. Dropping it gives back the bytes of what was never written.
pub(crate) struct OutboundReceiver {
    rx: mpsc::Receiver<Frame>,
    bytes: Arc<AtomicUsize>,
    budget: Arc<OutboundBudget>,
}

/// A new queue of at most `len_max` messages and `bytes_max` bytes, drawing on `budget`.
pub(crate) fn channel(
    len_max: usize,
    bytes_max: usize,
    budget: Arc<OutboundBudget>,
) -> (OutboundSender, OutboundReceiver) {
    let (tx, rx) = mpsc::channel(len_max.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        OutboundSender { tx, bytes: bytes.clone(), bytes_max, budget: budget.clone() },
        OutboundReceiver { rx, bytes, budget },
    )
}

impl OutboundSender {
    /// Queues `frame` if the bounds allow it. A frame is always taken by an empty queue (a
    /// large room's welcome is larger than a session's byte bound), so the bounds limit what
    /// piles up behind a client that does not read, never what one message may be.
    pub(crate) fn try_queue(&self, frame: Frame) -> Result<(), QueueFull> {
        let len = frame.len();
        let before = self.bytes.fetch_add(len, Ordering::Relaxed);
        let total = self.budget.bytes.fetch_add(len, Ordering::Relaxed);
        let refused = if before > 0 && before + len > self.bytes_max {
            Some(QueueFull::Session)
        } else if before > 0 && total + len > self.budget.max {
            Some(QueueFull::Server)
        } else {
            None
        };
        let result = match refused {
            Some(full) => Err(full),
            None => self.tx.try_send(frame).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => QueueFull::Session,
                mpsc::error::TrySendError::Closed(_) => QueueFull::Closed,
            }),
        };
        if result.is_err() {
            self.give_back(len);
        }
        result
    }

    /// Bytes waiting in this queue.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    fn give_back(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::Relaxed);
        self.budget.bytes.fetch_sub(len, Ordering::Relaxed);
    }
}

impl OutboundReceiver {
    /// The next frame, once one is queued; `None` when every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        let frame = self.rx.recv().await?;
        self.taken(&frame);
        Some(frame)
    }

    /// The next frame if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.rx.try_recv().ok()?;
        self.taken(&frame);
        Some(frame)
    }

    fn taken(&self, frame: &Frame) {
        self.bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        self.budget.bytes.fetch_sub(frame.len(), Ordering::Relaxed);
    }
}

impl Drop for OutboundReceiver {
    fn drop(&mut self) {
        // Closing first: a sender racing with this drop is refused (and gives back its bytes).
        self.rx.close();
        while let Ok(frame) = self.rx.try_recv() {
            self.taken(&frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Frame {
        Frame::from("x".repeat(len))
    }

    #[test]
    fn bounds_in_messages_and_bytes_per_queue_and_server() {
        let budget = OutboundBudget::new(250);
        let (a, mut ra) = channel(3, 100, budget.clone());
        let (b, rb) = channel(3, 1000, budget.clone());
        // An empty queue takes a frame larger than its bound.
        assert_eq!(a.try_queue(frame(150)), Ok(()));
        assert_eq!(a.try_queue(frame(1)), Err(QueueFull::Session), "over 100 bytes");
        assert_eq!(ra.try_recv().map(|f| f.len()), Some(150));
        assert_eq!((a.bytes(), budget.bytes()), (0, 0));
        for _ in 0..3 {
            assert_eq!(a.try_queue(frame(10)), Ok(()));
        }
        assert_eq!(a.try_queue(frame(10)), Err(QueueFull::Session), "over 3 messages");
        assert_eq!(b.try_queue(frame(200)), Ok(()));
        assert_eq!(b.try_queue(frame(30)), Err(QueueFull::Server), "over 250 bytes in all");
        assert_eq!(budget.bytes(), 230);
        drop(rb);
        assert_eq!(budget.bytes(), 30, "a dropped queue gives its bytes back");
        assert_eq!(b.try_queue(frame(1)), Err(QueueFull::Closed));
        drop(ra);
        assert_eq!(budget.bytes(), 0);
    }
}
