//! [`Named`]: a small map from metric names to values, kept as a sorted `Vec` because the status
//! board holds one per tick record and one per chart point for every app of a fleet.
//!
//! A `BTreeMap` allocates a whole node (room for 11 entries) even for one entry: about 1 KiB
//! for a [`crate::status::MetricRecord`] and 370 bytes for an `f64`, where an app usually has
//! one or two metrics. `Named` allocates exactly what it holds and serializes as the same JSON
//! object, in the same (sorted) order. Names are `Arc<str>`, so that the records and chart points
//! of one app can share them ([`Named::share_names`]).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Values by name, sorted by name, each name once.
#[derive(Debug, Clone, PartialEq)]
pub struct Named<V>(Vec<(Arc<str>, V)>);

impl<V> Default for Named<V> {
    fn default() -> Self {
        Named(Vec::new())
    }
}

impl<V> Named<V> {
    /// An empty map.
    pub fn new() -> Self {
        Named::default()
    }

    /// Sets `name` to `value` (replacing its value if it had one).
    pub fn insert(&mut self, name: String, value: V) {
        match self.0.binary_search_by(|(n, _)| (**n).cmp(name.as_str())) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => {
                // Grow by one: these maps stay small and are kept for a long time.
                self.0.reserve_exact(1);
                self.0.insert(i, (Arc::from(name), value));
            }
        }
    }

    /// The value of `name`, inserted as `V::default()` if missing.
    pub fn get_or_default(&mut self, name: &str) -> &mut V
    where
        V: Default,
    {
        let i = match self.0.binary_search_by(|(n, _)| (**n).cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (Arc::from(name), V::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// Keeps the names for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        self.0.retain(|(n, v)| keep(n, v));
    }

    /// Takes `other`'s allocation of each name both have (the names of an app's metrics rarely
    /// change from one tick to the next).
    pub fn share_names<W>(&mut self, other: &Named<W>) {
        for (n, _) in &mut self.0 {
            if let Ok(i) = other.0.binary_search_by(|(o, _)| (**o).cmp(&**n)) {
                *n = other.0[i].0.clone();
            }
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.0
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// The names and values, by name.
    pub fn iter(&self) -> Iter<'_, V> {
        Iter(self.0.iter())
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| &**n)
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> FromIterator<(String, V)> for Named<V> {
    /// Sorted by name; of a name given twice, the last value stays (as in a `BTreeMap`).
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut v: Vec<(String, V)> = iter.into_iter().collect();
        // Stable: equal names keep their order, so the last one given is the last of its run.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Arc<str>, V)> = Vec::with_capacity(v.len());
        for (n, val) in v {
            match out.last_mut() {
                Some(last) if *last.0 == *n => last.1 = val,
                _ => out.push((Arc::from(n), val)),
            }
        }
        out.shrink_to_fit();
        Named(out)
    }
}

impl<'a, V> IntoIterator for &'a Named<V> {
    type Item = (&'a str, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        Iter(self.0.iter())
    }
}

/// The names and values of a [`Named`], by name.
#[derive(Debug)]
pub struct Iter<'a, V>(std::slice::Iter<'a, (Arc<str>, V)>);

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a str, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(n, v)| (&**n, v))
    }
}

impl<V> std::ops::Index<&str> for Named<V> {
    type Output = V;

    /// Panics when `name` is missing, as `BTreeMap` does.
    fn index(&self, name: &str) -> &V {
        self.get(name).expect("no entry found for key")
    }
}

impl<V: Serialize> Serialize for Named<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            map.serialize_entry(&**n, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Named<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NamedVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for NamedVisitor<V> {
            type Value = Named<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Named<V>, A::Error> {
                let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some((n, v)) = access.next_entry::<String, V>()? {
                    entries.push((n, v));
                }
                Ok(entries.into_iter().collect())
            }
        }

        d.deserialize_map(NamedVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn serializes_like_a_btreemap() {
        let pairs = [("b", 2.0), ("a", 1.0), ("c", 3.0), ("a", 4.0)];
        let named: Named<f64> = pairs.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect();
        let tree: BTreeMap<String, f64> =
            pairs.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect();
        assert_eq!(
            serde_json::to_string(&named).unwrap(),
            serde_json::to_string(&tree).unwrap()
        );
        let back: Named<f64> = serde_json::from_str(r#"{"z":1,"y":2,"z":3}"#).unwrap();
        assert_eq!(back.keys().collect::<Vec<_>>(), ["y", "z"]);
        assert_eq!(back["z"], 3.0);
    }

    #[test]
    fn insert_keeps_names_sorted_and_unique() {
        let mut n = Named::new();
        n.insert("m".to_owned(), 1);
        n.insert("a".to_owned(), 2);
        n.insert("m".to_owned(), 3);
        assert_eq!(n.iter().collect::<Vec<_>>(), [("a", &2), ("m", &3)]);
        assert_eq!(n.get("m"), Some(&3));
        assert_eq!(n.get("x"), None);
        assert_eq!(n.len(), 2);
        assert!(!n.is_empty());
        let mut other: Named<f64> = [("m".to_owned(), 1.0)].into_iter().collect();
        other.share_names(&n);
        assert!(Arc::ptr_eq(&other.0[0].0, &n.0[1].0));
        *n.get_or_default("b") += 5;
        n.retain(|name, _| name != "a");
        assert_eq!(n.iter().collect::<Vec<_>>(), [("b", &5), ("m", &3)]);
    }
}
