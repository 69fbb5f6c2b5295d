//! Changes to objects: the events watches deliver, and the compact form the store keeps them
//! in for watches that resume from an older resourceVersion.

use std::sync::Arc;

use serde_json::Value;

use berth_kube::kinds::Kind;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created (or already there when a watch started).
    Added,
    /// Changed.
    Modified,
    /// Deleted; the object is its last state.
    Deleted,
}

impl EventType {
    /// The name watch streams use: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, as a watch delivers it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The object's type.
    pub kind: &'static Kind,
    /// What happened.
    pub event_type: EventType,
    /// The object after the change (its last state for a deletion).
    pub object: Value,
    /// The store revision the change made.
    pub revision: u64,
}

/// A watch event as the history and the broadcast keep it: the object serialized in one
/// shared allocation. A `Value` tree is hundreds of small allocations; kept for a thousand
/// events they pin allocator pages all over the heap, so the memory of deleted objects was
/// never returned. Each watcher parses the events it is handed.
#[derive(Debug, Clone)]
pub(super) struct StoredEvent {
    pub(super) kind: &'static Kind,
    pub(super) event_type: EventType,
    pub(super) object: Arc<[u8]>,
    pub(super) revision: u64,
}

impl StoredEvent {
    /// The event `event_type` of `object` of `kind` at `revision`, serialized.
    pub(super) fn new(
        kind: &'static Kind,
        event_type: EventType,
        object: &Value,
        revision: u64,
    ) -> Self {
        StoredEvent {
            kind,
            event_type,
            // A Value always serializes.
            object: serde_json::to_vec(object).unwrap_or_default().into(),
            revision,
        }
    }

    /// The event with its object parsed (`None` if it does not parse, which the store's
    /// own serialization rules out).
    pub(super) fn parse(&self) -> Option<WatchEvent> {
        Some(WatchEvent {
            kind: self.kind,
            event_type: self.event_type,
            object: serde_json::from_slice(&self.object).ok()?,
            revision: self.revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kube::kinds;
    use serde_json::json;

    #[test]
    fn event_types_use_the_watch_stream_names() {
        assert_eq!(EventType::Added.as_str(), "ADDED");
        assert_eq!(EventType::Modified.as_str(), "MODIFIED");
        assert_eq!(EventType::Deleted.as_str(), "DELETED");
    }

    #[test]
    fn stored_events_parse_back_to_what_was_stored() {
        let object = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let stored = StoredEvent::new(&kinds::CONFIG_MAP, EventType::Deleted, &object, 7);
        let e = stored.parse().unwrap();
        assert!(std::ptr::eq(e.kind, &kinds::CONFIG_MAP));
        assert_eq!(e.event_type, EventType::Deleted);
        assert_eq!(e.object, object);
        assert_eq!(e.revision, 7);
        let torn = StoredEvent {
            object: Arc::from(&b"{\"a\""[..]),
            ..stored
        };
        assert!(torn.parse().is_none());
    }
}
