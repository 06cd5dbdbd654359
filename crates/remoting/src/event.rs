//! Channel events: connect, close, idle, exception, delivered off the I/O path.

use std::sync::Arc;
use tokio::sync::mpsc;

/// The connection an event is about: its process-wide id (what to key state by: no peer can
/// claim another connection's id) and its peer address (for logs; a PROXY header from a trusted
/// proxy sets it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Process-wide connection id, as [`crate::ConnectionHandle::id`] returns it.
    pub id: u64,
    /// Remote address "ip:port".
    pub peer: String,
}

/// What happened to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelEvent {
    /// A connection was accepted (server) or established (client).
    Connect(Channel),
    /// A connection closed, for whatever reason.
    Close(Channel),
    /// A connection was closed for being idle (a Close follows).
    Idle(Channel),
    /// A connection failed (malformed frame, I/O error); the text says why (a Close follows).
    Exception(Channel, String),
}

impl ChannelEvent {
    /// The connection the event is about.
    pub fn channel(&self) -> &Channel {
        match self {
            ChannelEvent::Connect(c)
            | ChannelEvent::Close(c)
            | ChannelEvent::Idle(c)
            | ChannelEvent::Exception(c, _) => c,
        }
    }
}

/// Receives channel events in order, on a task of its own (Java `ChannelEventListener`), so a slow
/// listener never stalls I/O. The NameServer uses it to drop brokers whose connection closed.
pub trait ChannelEventListener: Send + Sync + 'static {
    /// Called once per event.
    fn on_event(&self, event: ChannelEvent);
}

/// Bounded queue in front of the listener: 10,000 events as in Java; past that, events are dropped
/// with a warning rather than blocking connections.
#[derive(Clone)]
pub(crate) struct EventSink {
    tx: Option<mpsc::Sender<ChannelEvent>>,
}

impl EventSink {
    pub(crate) fn new(listener: Option<Arc<dyn ChannelEventListener>>) -> Self {
        let Some(listener) = listener else {
            return EventSink { tx: None };
        };
        let (tx, mut rx) = mpsc::channel::<ChannelEvent>(10_000);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                listener.on_event(ev);
            }
        });
        EventSink { tx: Some(tx) }
    }

    pub(crate) fn emit(&self, event: ChannelEvent) {
        if let Some(tx) = &self.tx {
            match tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("event queue full, channel event dropped");
                }
                // The listener's task is gone: the runtime is shutting down, and nobody is
                // left to tell (found as a WARN line in a clean SIGTERM stop's log).
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::debug!("event queue closed, channel event dropped");
                }
            }
        }
    }
}
