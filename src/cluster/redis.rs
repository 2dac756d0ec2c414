//! The [`Bus`] on Redis pub/sub (fred): one connection publishes, in order, everything queued
//! (several messages per round trip, as one pipeline); another subscribes, and its messages are
//! handed to each channel's [`Subscription`]. Both reconnect on their own; subscriptions are made
//! again after a reconnect, and every subscriber is told that messages may have been lost
//! meanwhile (Redis keeps nothing for a subscriber that was away).
//!
//! Must not: wait in `publish` (rooms call it from their actor), or hold messages past
//! `cluster_publish_bytes_max`.

use super::{subscription, Bus, BusError, Published, Subscription, SubscriptionSender};
use async_trait::async_trait;
use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Messages published in one round trip at most.
const PIPELINE_MESSAGES_MAX: usize = 256;

/// How a subscription is bounded.
#[derive(Debug, Clone, Copy)]
struct SubscriptionBounds {
    len_max: usize,
    bytes_max: usize,
}

/// The nodes of a cluster talking through one Redis server (pub/sub): give it to every node's
/// [`ServerBuilder::redis`](crate::ServerBuilder::redis), with the same PostgreSQL store.
pub struct RedisBus {
    node: String,
    queue: mpsc::UnboundedSender<Outgoing>,
    /// Bytes queued and not yet published, against `publish_bytes_max`.
    queued_bytes: Arc<AtomicUsize>,
    publish_bytes_max: usize,
    subscriber: SubscriberClient,
    routes: Arc<Mutex<HashMap<String, SubscriptionSender>>>,
    bounds: SubscriptionBounds,
}

/// A message waiting to be published, and who waits for its receiver count.
struct Outgoing {
    channel: String,
    message: Bytes,
    done: Option<oneshot::Sender<Result<u64, BusError>>>,
}

fn failed(e: impl std::fmt::Display) -> BusError {
    BusError::Failed(e.to_string())
}

impl RedisBus {
    /// Connects to Redis at `url` (`redis://HOST:PORT`) as node `node` (the same name as its
    /// store's node id), bounded by `limits`' `cluster_*` limits (the server's own limits).
    ///
    /// # Errors
    ///
    /// [`BusError::Failed`] if the URL is bad or Redis cannot be reached.
    pub async fn connect(url: &str, node: &str, limits: &crate::ServerLimits) -> Result<Arc<RedisBus>, BusError> {
        let publish_bytes_max = limits.cluster_publish_bytes_max;
        let bounds = SubscriptionBounds {
            len_max: limits.cluster_subscription_len_max,
            bytes_max: limits.cluster_subscription_bytes_max,
        };
        let config = Config::from_url(url).map_err(failed)?;
        let mut builder = Builder::from_config(config);
        // Forever, every 100 ms: a Redis that restarts is found again as soon as it is back.
        builder.set_policy(ReconnectPolicy::new_constant(0, 100));
        builder.with_connection_config(|c| {
            // Small messages go out at once (Nagle would hold a publish for the previous ACK).
            c.tcp.nodelay = Some(true);
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = Duration::from_secs(2);
        });
        builder.with_performance_config(|p| {
            p.broadcast_channel_capacity = bounds.len_max.max(32);
            p.default_command_timeout = Duration::from_secs(5);
        });
        let publisher = builder.build().map_err(failed)?;
        let subscriber = builder.build_subscriber_client().map_err(failed)?;
        publisher.init().await.map_err(failed)?;
        subscriber.init().await.map_err(failed)?;
        let routes: Arc<Mutex<HashMap<String, SubscriptionSender>>> = Arc::default();
        tokio::spawn(route(subscriber.clone(), routes.clone()));
        let (queue, rx) = mpsc::unbounded_channel();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        tokio::spawn(publish_loop(publisher, rx, queued_bytes.clone()));
        Ok(Arc::new(RedisBus {
            node: node.to_owned(),
            queue,
            queued_bytes,
            publish_bytes_max,
            subscriber,
            routes,
            bounds,
        }))
    }

    fn enqueue(&self, item: Outgoing) -> Result<(), BusError> {
        let len = item.message.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::SeqCst);
        if before > 0 && before + len > self.publish_bytes_max {
            self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
            return Err(BusError::Full { limit: self.publish_bytes_max });
        }
        self.queue.send(item).map_err(|_| BusError::Failed("the publisher has stopped".into()))
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn node(&self) -> &str {
        &self.node
    }

    fn publish(&self, channel: &str, message: Bytes) -> Result<(), BusError> {
        self.enqueue(Outgoing { channel: channel.to_owned(), message, done: None })
    }

    fn publish_counted(&self, channel: &str, message: Bytes) -> Published {
        let (done, rx) = oneshot::channel();
        let queued = self.enqueue(Outgoing { channel: channel.to_owned(), message, done: Some(done) });
        Box::pin(async move {
            queued?;
            rx.await.map_err(|_| BusError::Failed("the publisher has stopped".into()))?
        })
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = subscription(self.bounds.len_max, self.bounds.bytes_max);
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).insert(channel.to_owned(), tx);
        self.subscriber.subscribe(channel).await.map_err(failed)?;
        Ok(rx)
    }

    fn unsubscribe(&self, channel: &str) {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).remove(channel);
        let (subscriber, channel) = (self.subscriber.clone(), channel.to_owned());
        tokio::spawn(async move {
            if let Err(e) = subscriber.unsubscribe(channel.as_str()).await {
                tracing::debug!(%channel, error = %e, "unsubscribe failed");
            }
        });
    }
}

/// Hands each received message to its channel's subscription; after a reconnect, or when this
/// node fell behind Redis, tells every subscription that messages may have been lost.
async fn route(subscriber: SubscriberClient, routes: Arc<Mutex<HashMap<String, SubscriptionSender>>>) {
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    let lose_all = |routes: &Mutex<HashMap<String, SubscriptionSender>>| {
        for r in routes.lock().unwrap_or_else(|e| e.into_inner()).values() {
            r.lose();
        }
    };
    loop {
        tokio::select! {
            m = messages.recv() => match m {
                Ok(m) => {
                    let Some(bytes) = m.value.into_bytes() else { continue };
                    let mut routes = routes.lock().unwrap_or_else(|e| e.into_inner());
                    let channel: &str = &m.channel;
                    if let Some(r) = routes.get(channel) {
                        if r.is_closed() {
                            routes.remove(channel);
                        } else {
                            r.deliver(bytes);
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "fell behind the bus: messages lost");
                    lose_all(&routes);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            r = reconnects.recv() => match r {
                Ok(server) => {
                    tracing::info!(%server, "the bus's subscriber connection is back");
                    lose_all(&routes);
                    tokio::spawn(resubscribe(subscriber.clone()));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => lose_all(&routes),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Subscribes again to every channel after a reconnect, until Redis takes it (a subscription
/// that failed once must not stay lost: the room's holder would never hear its requests).
async fn resubscribe(subscriber: SubscriberClient) {
    for attempt in 1.. {
        match subscriber.resubscribe_all().await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "subscribing again failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Publishes what is queued, in order: everything waiting at once as one pipeline.
async fn publish_loop(client: Client, mut rx: mpsc::UnboundedReceiver<Outgoing>, queued: Arc<AtomicUsize>) {
    let mut batch: Vec<Outgoing> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < PIPELINE_MESSAGES_MAX {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let pipeline = client.pipeline();
        for item in &batch {
            let queued: Result<(), _> = pipeline.publish(item.channel.as_str(), item.message.clone()).await;
            debug_assert!(queued.is_ok(), "invariant: a pipeline only queues");
        }
        let results: Vec<Result<i64, fred::error::Error>> = pipeline.try_all().await;
        for (i, item) in batch.drain(..).enumerate() {
            queued.fetch_sub(item.message.len(), Ordering::SeqCst);
            let result = match results.get(i) {
                Some(Ok(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
                Some(Err(e)) => Err(failed(e)),
                None => Err(BusError::Failed("no answer to a publish".into())),
            };
            if let Err(e) = &result {
                tracing::warn!(channel = %item.channel, error = %e, "a message was not published");
            }
            if let Some(done) = item.done {
                let _ = done.send(result);
            }
        }
    }
}
