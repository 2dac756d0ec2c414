//! Nodes of one cluster talking to each other: the [`Bus`] (publish bytes to a channel, subscribe
//! to one) that rooms use to reach the node holding a room and to hear from it, and
//! [`Subscription`], what a subscriber reads: messages in the order they were published, or word
//! that some were lost. `redis.rs` (feature `redis`) is the bus on Redis pub/sub.
//!
//! Must not: know rooms, sessions or the messages' contents (`protocol::cluster` encodes them).

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::RedisBus;

use async_trait::async_trait;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Why the bus could not do something.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The messages waiting to be published would pass `cluster_publish_bytes_max`.
    #[error("more than {limit} bytes are waiting to be published")]
    Full {
        /// The limit.
        limit: usize,
    },
    /// The bus's server refused or could not be reached.
    #[error("the bus failed: {0}")]
    Failed(String),
}

/// The receiver count of a message queued by [`Bus::publish_counted`], once it is published.
pub(crate) type Published = Pin<Box<dyn Future<Output = Result<u64, BusError>> + Send>>;

/// Publish and subscribe between the nodes of a cluster.
#[async_trait]
pub(crate) trait Bus: Send + Sync + 'static {
    /// This node's name.
    fn node(&self) -> &str;
    /// Queues `message` to be published on `channel` after everything queued before it (in
    /// that order), without waiting; refused past the bus's byte bound.
    fn publish(&self, channel: &str, message: Bytes) -> Result<(), BusError>;
    /// Queues `message` like [`publish`](Bus::publish) (at once, in order), and returns what
    /// says, once it is published, how many subscribers received it.
    fn publish_counted(&self, channel: &str, message: Bytes) -> Published;
    /// Subscribes to `channel` (replacing an earlier subscription of this node to it).
    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError>;
    /// Ends this node's subscription to `channel`.
    fn unsubscribe(&self, channel: &str);
}

/// What a subscriber reads next.
#[derive(Debug, PartialEq)]
pub(crate) enum Delivery {
    /// A message, in publishing order.
    Message(Bytes),
    /// Messages may have been lost since the last one (the connection to the bus was lost and
    /// made again, or this subscriber did not keep up): what is read next may not follow.
    Lost,
    /// The subscription ended.
    Ended,
}

/// One channel's messages as this node receives them, bounded by `len_max` messages and
/// `bytes_max` bytes waiting: a subscriber that falls that far behind loses messages and is told
/// so.
pub(crate) struct Subscription {
    rx: mpsc::Receiver<Bytes>,
    lost: Arc<Lost>,
}

/// The sending side of a [`Subscription`], kept by the bus (only a bus makes them: unused in a
/// build without one).
#[derive(Clone)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) struct SubscriptionSender {
    tx: mpsc::Sender<Bytes>,
    lost: Arc<Lost>,
    bytes_max: usize,
}

#[derive(Default)]
struct Lost {
    flag: AtomicBool,
    notify: Notify,
    /// Bytes waiting in the channel.
    bytes: AtomicUsize,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
/// A subscription of at most `len_max` waiting messages and `bytes_max` bytes (a message is
/// always taken by an empty subscription, however large).
pub(crate) fn subscription(len_max: usize, bytes_max: usize) -> (SubscriptionSender, Subscription) {
    let (tx, rx) = mpsc::channel(len_max.max(1));
    let lost = Arc::new(Lost::default());
    (SubscriptionSender { tx, lost: lost.clone(), bytes_max }, Subscription { rx, lost })
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl SubscriptionSender {
    /// Hands a message to the subscriber; one it has no room for is lost (and it is told).
    pub(crate) fn deliver(&self, message: Bytes) {
        let len = message.len();
        let before = self.lost.bytes.fetch_add(len, Ordering::SeqCst);
        if (before > 0 && before + len > self.bytes_max) || self.tx.try_send(message).is_err() {
            self.lost.bytes.fetch_sub(len, Ordering::SeqCst);
            self.lose();
        }
    }
    /// Tells the subscriber that messages were lost.
    pub(crate) fn lose(&self) {
        self.lost.flag.store(true, Ordering::SeqCst);
        self.lost.notify.notify_one();
    }
    /// Whether the subscriber is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl Subscription {
    /// The next delivery. A loss is said before the messages that came after it.
    pub(crate) async fn next(&mut self) -> Delivery {
        loop {
            if self.lost.flag.swap(false, Ordering::SeqCst) {
                // What was waiting may have come before the loss: it is dropped with it.
                while let Ok(m) = self.rx.try_recv() {
                    self.lost.bytes.fetch_sub(m.len(), Ordering::SeqCst);
                }
                return Delivery::Lost;
            }
            tokio::select! {
                biased;
                _ = self.lost.notify.notified() => continue,
                m = self.rx.recv() => return m.map_or(Delivery::Ended, |m| {
                    self.lost.bytes.fetch_sub(m.len(), Ordering::SeqCst);
                    Delivery::Message(m)
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_subscription_says_it_lost_messages_before_what_follows() {
        let (tx, mut rx) = subscription(2, 100);
        tx.deliver(Bytes::from_static(b"1"));
        assert_eq!(rx.next().await, Delivery::Message(Bytes::from_static(b"1")));
        tx.deliver(Bytes::from_static(b"2"));
        tx.deliver(Bytes::from_static(b"3"));
        tx.deliver(Bytes::from_static(b"4"));
        assert_eq!(rx.next().await, Delivery::Lost, "4 did not fit");
        tx.deliver(Bytes::from_static(b"5"));
        assert_eq!(rx.next().await, Delivery::Message(Bytes::from_static(b"5")));
        tx.deliver(Bytes::from(vec![b'x'; 150]));
        tx.deliver(Bytes::from_static(b"6"));
        assert_eq!(rx.next().await, Delivery::Lost, "over 100 bytes");
        tx.deliver(Bytes::from(vec![b'x'; 150]));
        let big = rx.next().await;
        assert!(matches!(&big, Delivery::Message(m) if m.len() == 150), "an empty subscription takes a large message");
        tx.lose();
        assert_eq!(rx.next().await, Delivery::Lost);
        drop(tx);
        assert_eq!(rx.next().await, Delivery::Ended);
    }
}
