//! Changes between two reads of a map, and their coalescing for a watcher that has not
//! sent them yet.
//!
//! A watcher's pending set holds at most one change per key: what the watcher's client must
//! learn to go from what it was last told to what the map holds now. Merging a newer change
//! into it follows from that (added then changed is still added, added then removed is
//! nothing, removed then added is changed, ...), so a slow watcher's backlog is bounded by
//! the number of keys, never by the number of polls.

use std::collections::HashMap;

use bytes::Bytes;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A key that was not there.
    Added,
    /// A key whose value changed.
    Changed,
    /// A key that is gone.
    Removed,
}

/// One change: the key, what happened, and the new value (None for removals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key.
    pub key: Bytes,
    /// What happened.
    pub kind: Kind,
    /// The new value (value_stride bytes), None when removed.
    pub value: Option<Bytes>,
}

/// The changes from `old` to `new` (in `new`'s order, removals last), and `new` as a map for
/// the next comparison. Values of changes are copied so that they do not pin the read's
/// buffers.
pub fn diff(
    old: &HashMap<Bytes, Bytes>,
    new: &[(Bytes, Bytes)],
) -> (HashMap<Bytes, Bytes>, Vec<Change>) {
    let mut next = HashMap::with_capacity(new.len());
    let mut changes = Vec::new();
    for (k, v) in new {
        let kind = match old.get(k) {
            None => Some(Kind::Added),
            Some(prev) if prev != v => Some(Kind::Changed),
            Some(_) => None,
        };
        if let Some(kind) = kind {
            changes.push(Change {
                key: Bytes::copy_from_slice(k),
                kind,
                value: Some(Bytes::copy_from_slice(v)),
            });
        }
        next.insert(k.clone(), v.clone());
    }
    for k in old.keys() {
        if !next.contains_key(k) {
            changes.push(Change {
                key: Bytes::copy_from_slice(k),
                kind: Kind::Removed,
                value: None,
            });
        }
    }
    (next, changes)
}

/// Changes a watcher has not sent yet, at most one per key, in the order they first came.
#[derive(Debug, Default)]
pub struct Pending {
    by_key: HashMap<Bytes, (u64, Kind, Option<Bytes>)>,
    seq: u64,
}

impl Pending {
    /// Folds a newer batch of changes in.
    pub fn merge(&mut self, changes: &[Change]) {
        for c in changes {
            self.seq += 1;
            let merged = match self.by_key.get(&c.key).map(|(_, k, _)| *k) {
                None => Some(c.kind),
                Some(prev) => match (prev, c.kind) {
                    // The client never saw it: it is still new, or it was never there.
                    (Kind::Added, Kind::Changed) => Some(Kind::Added),
                    (Kind::Added, Kind::Removed) => None,
                    // The client knows the key: it changed, or it is gone.
                    (Kind::Changed, Kind::Removed) => Some(Kind::Removed),
                    (Kind::Removed, Kind::Added) => Some(Kind::Changed),
                    (_, now) => Some(now),
                },
            };
            match merged {
                None => {
                    self.by_key.remove(&c.key);
                }
                Some(kind) => {
                    let seq = self.by_key.get(&c.key).map_or(self.seq, |(s, _, _)| *s);
                    self.by_key
                        .insert(c.key.clone(), (seq, kind, c.value.clone()));
                }
            }
        }
    }

    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Takes everything, in first-seen order.
    pub fn take(&mut self) -> Vec<Change> {
        let mut all: Vec<_> = self.by_key.drain().collect();
        all.sort_by_key(|(_, (seq, _, _))| *seq);
        all.into_iter()
            .map(|(key, (_, kind, value))| Change { key, kind, value })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn entries(list: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
        list.iter().map(|(k, v)| (b(k), b(v))).collect()
    }

    fn summary(changes: &[Change]) -> Vec<(String, Kind, Option<String>)> {
        changes
            .iter()
            .map(|c| {
                (
                    String::from_utf8_lossy(&c.key).into_owned(),
                    c.kind,
                    c.value
                        .as_ref()
                        .map(|v| String::from_utf8_lossy(v).into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn diff_finds_added_changed_and_removed_keys() {
        let (old, first) = diff(&HashMap::new(), &entries(&[("a", "1"), ("b", "2")]));
        assert_eq!(first.len(), 2);
        let (_, changes) = diff(&old, &entries(&[("b", "3"), ("c", "4")]));
        assert_eq!(
            summary(&changes),
            vec![
                ("b".into(), Kind::Changed, Some("3".into())),
                ("c".into(), Kind::Added, Some("4".into())),
                ("a".into(), Kind::Removed, None),
            ]
        );
        let (_, none) = diff(&old, &entries(&[("a", "1"), ("b", "2")]));
        assert!(none.is_empty());
    }

    #[test]
    fn pending_changes_coalesce_per_key() {
        let change = |k: &str, kind, v: Option<&str>| Change {
            key: b(k),
            kind,
            value: v.map(b),
        };
        let mut p = Pending::default();
        p.merge(&[
            change("new", Kind::Added, Some("1")),
            change("gone", Kind::Removed, None),
            change("flap", Kind::Changed, Some("1")),
            change("brief", Kind::Added, Some("1")),
        ]);
        p.merge(&[
            change("new", Kind::Changed, Some("2")),
            change("gone", Kind::Added, Some("9")),
            change("flap", Kind::Removed, None),
            change("brief", Kind::Removed, None),
        ]);
        assert_eq!(
            summary(&p.take()),
            vec![
                ("new".into(), Kind::Added, Some("2".into())),
                ("gone".into(), Kind::Changed, Some("9".into())),
                ("flap".into(), Kind::Removed, None),
            ]
        );
        assert!(p.is_empty());
    }
}
