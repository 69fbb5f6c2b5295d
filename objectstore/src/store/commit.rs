//! Committing a transaction: the journal record is written (and fsynced) first, then the
//! in-memory map, the watch history and the broadcast follow; the journal is compacted and
//! freed memory handed back to the kernel now and then.

use serde_json::Value;

use crate::journal::{Op, Record};

use super::event::{EventType, StoredEvent};
use super::key::Key;
use super::{Inner, State, StoreError};

/// Watch events kept in memory for watches that resume from an older resourceVersion (and
/// the broadcast buffer's size). A deleted object's last state stays until its event leaves
/// both, so this bounds what deleted objects hold; Kubernetes' watch cache keeps 100 to a
/// few thousand events per type, and a watcher that falls further behind lists again. Each
/// is kept serialized, in one allocation (see [`StoredEvent`]).
pub(super) const HISTORY: usize = 1024;

/// Objects deleted after which the allocator is asked to return free memory to the kernel
/// (glibc keeps freed pages in its per-thread arenas).
const TRIM_AFTER_DELETES: usize = 512;

/// One change of a transaction: an object written (created or modified), or deleted with
/// its last state (for the DELETED event).
pub(super) enum Change {
    Put(Key, Value, EventType),
    Delete(Key, Value),
}

/// Makes `txn` the next revision: durable first, then visible to readers and watchers.
pub(super) fn commit(inner: &Inner, state: &mut State, txn: Vec<Change>) -> Result<(), StoreError> {
    let rev = state.revision + 1;
    let record = Record {
        rev,
        ops: txn
            .iter()
            .map(|change| match change {
                Change::Put(k, object, _) => Op::Put {
                    key: k.to_journal(),
                    object: object.clone(),
                },
                Change::Delete(k, _) => Op::Delete {
                    key: k.to_journal(),
                },
            })
            .collect(),
    };
    state.journal.append(&record)?;
    state.revision = rev;
    for change in txn {
        let event = match change {
            Change::Put(k, object, event_type) => {
                let event = StoredEvent::new(k.kind(), event_type, &object, rev);
                state.objects.insert(k, object);
                event
            }
            Change::Delete(k, last) => {
                state.objects.remove(&k);
                state.deleted_since_trim += 1;
                StoredEvent::new(k.kind(), EventType::Deleted, &last, rev)
            }
        };
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = inner.events.send(event);
    }
    let mut trim = state.deleted_since_trim >= TRIM_AFTER_DELETES;
    if state.journal.wants_compaction() {
        let objects = state.objects.iter().map(|(k, v)| (k.to_journal(), v));
        if let Err(e) = state.journal.compact(rev, objects) {
            tracing::warn!(error = %e, "compacting the daemon store failed; the journal keeps growing");
        }
        // The snapshot was built in memory: give its buffers back too.
        trim = true;
    }
    if trim {
        state.deleted_since_trim = 0;
        berth_runtime::sys::heap::trim();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{cm, rv};
    use crate::store::{ObjectStore, Preconditions, Propagation};
    use berth_kube::kinds;
    use serde_json::json;

    #[test]
    fn durable_across_reopen_and_torn_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, revision) = {
            let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
            let a = s
                .create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
                .unwrap();
            s.create(&kinds::CONFIG_MAP, cm("default", "b", "1"))
                .unwrap();
            s.delete(
                &kinds::CONFIG_MAP,
                "default",
                "b",
                Propagation::Background,
                Preconditions::default(),
            )
            .unwrap();
            (a["metadata"]["uid"].clone(), s.revision())
        };
        // A crash in the middle of a write leaves a line without its newline.
        let journal = dir.path().join("journal.jsonl");
        let mut bytes = std::fs::read(&journal).unwrap();
        bytes.extend_from_slice(br#"{"rev":99,"ops":[{"op":"put","#);
        std::fs::write(&journal, bytes).unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        assert_eq!(s.revision(), revision);
        assert_eq!(
            s.get(&kinds::CONFIG_MAP, "default", "a").unwrap()["metadata"]["uid"],
            uid
        );
        assert!(s.get(&kinds::CONFIG_MAP, "default", "b").is_err());
        let c = s
            .create(&kinds::CONFIG_MAP, cm("default", "c", "1"))
            .unwrap();
        assert_eq!(rv(&c), revision + 1);
        drop(s);
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        assert!(s.get(&kinds::CONFIG_MAP, "default", "c").is_ok());
    }

    #[test]
    fn compaction_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let mut a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "0"))
            .unwrap();
        for i in 0..crate::journal::COMPACT_AFTER + 10 {
            a["data"]["k"] = json!(i.to_string());
            a = s.update(&kinds::CONFIG_MAP, a).unwrap();
        }
        let revision = s.revision();
        drop(s);
        assert!(dir.path().join("snapshot.json").exists());
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        assert_eq!(s.revision(), revision);
        assert_eq!(s.get(&kinds::CONFIG_MAP, "default", "a").unwrap(), a);
    }

    #[test]
    fn the_history_keeps_the_latest_events_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let mut a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "0"))
            .unwrap();
        for i in 0..HISTORY + 5 {
            a["data"]["k"] = json!(i.to_string());
            a = s.update(&kinds::CONFIG_MAP, a).unwrap();
        }
        let state = s.lock();
        assert_eq!(state.history.len(), HISTORY);
        assert_eq!(
            state.history.back().map(|e| e.revision),
            Some(state.revision)
        );
        assert_eq!(
            state.history.front().map(|e| e.revision),
            Some(state.revision + 1 - HISTORY as u64)
        );
    }

    #[test]
    fn a_transaction_is_one_revision_with_events_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
            .unwrap();
        let mut rx = s.inner.events.subscribe();
        let mut state = s.lock();
        let before = state.revision;
        let b = Key::new(&kinds::CONFIG_MAP, "default", "b");
        let a_key = Key::new(&kinds::CONFIG_MAP, "default", "a");
        commit(
            &s.inner,
            &mut state,
            vec![
                Change::Put(b.clone(), cm("default", "b", "1"), EventType::Added),
                Change::Delete(a_key.clone(), a),
            ],
        )
        .unwrap();
        assert_eq!(state.revision, before + 1);
        assert!(state.objects.contains_key(&b) && !state.objects.contains_key(&a_key));
        drop(state);
        let first = rx.try_recv().unwrap();
        let second = rx.try_recv().unwrap();
        assert_eq!(
            (first.event_type, second.event_type),
            (EventType::Added, EventType::Deleted)
        );
        assert_eq!((first.revision, second.revision), (before + 1, before + 1));
    }
}
