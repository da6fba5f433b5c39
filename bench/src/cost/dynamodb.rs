//! DynamoDB's billing rules for one write, on the items before and after it: write units per
//! 1 KB of the larger of the two, doubled in a transaction; and each global secondary index
//! written as the developer guide says, from the table's key schema and the index's projection.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub type Item = Map<String, Value>;

/// An attribute value's billed size (DynamoDB's item size rules).
fn value_size(v: &Value) -> u64 {
    let Some((kind, v)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => v.as_str().map_or(0, |s| s.len() as u64),
        "N" => v
            .as_str()
            .map_or(0, |s| s.trim_start_matches('-').len() as u64 / 2 + 1),
        "B" => v.as_str().map_or(0, |s| s.len() as u64 * 3 / 4),
        "BOOL" | "NULL" => 1,
        "L" => {
            3 + v
                .as_array()
                .map_or(0, |l| l.iter().map(|e| 1 + value_size(e)).sum())
        }
        "M" => 3 + v.as_object().map_or(0, |m| item_size(m) + m.len() as u64),
        "SS" | "NS" | "BS" => v.as_array().map_or(0, |l| {
            l.iter()
                .map(|e| e.as_str().map_or(0, str::len) as u64)
                .sum()
        }),
        _ => 0,
    }
}

/// Attribute names and values, as DynamoDB sizes an item.
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, v)| name.len() as u64 + value_size(v))
        .sum()
}

/// Units of `bytes` at `per` bytes a unit, rounded up; every request is at least one.
pub fn units(bytes: u64, per: u64) -> f64 {
    bytes.div_ceil(per).max(1) as f64
}

#[derive(Clone, Debug, PartialEq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Index {
    pub name: String,
    pub keys: Vec<String>,
    pub projection: Projection,
}

/// A table's key attributes and its global secondary indexes.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub keys: Vec<String>,
    pub indexes: Vec<Index>,
}

fn key_names(schema: &Value) -> Vec<String> {
    schema
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["AttributeName"].as_str().map(String::from))
        .collect()
}

impl Schema {
    /// From a `CreateTable` request, or a `DescribeTable` answer's `Table` (same field names).
    pub fn from_definition(table: &Value) -> Option<Schema> {
        let keys = key_names(&table["KeySchema"]);
        if keys.is_empty() {
            return None;
        }
        let indexes = table["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|index| {
                let projection = &index["Projection"];
                Index {
                    name: index["IndexName"].as_str().unwrap_or_default().to_string(),
                    keys: key_names(&index["KeySchema"]),
                    projection: match projection["ProjectionType"].as_str() {
                        Some("KEYS_ONLY") => Projection::KeysOnly,
                        Some("INCLUDE") => Projection::Include(
                            projection["NonKeyAttributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|a| a.as_str().map(String::from))
                                .collect(),
                        ),
                        // ALL, and DynamoDB's default when a projection names no type.
                        _ => Projection::All,
                    },
                }
            })
            .collect();
        Some(Schema { keys, indexes })
    }

    /// The item's primary key, as one comparable string.
    pub fn key_of(&self, item: &Item) -> String {
        self.keys
            .iter()
            .map(|k| item.get(k).map(Value::to_string).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("|")
    }

    /// The entries `item` has in the table's indexes: (index name, projected size).
    pub fn entries<'a>(&'a self, item: &'a Item) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        self.indexes.iter().filter_map(move |index| {
            index
                .entry(&self.keys, item)
                .map(|e| (index.name.as_str(), item_size(&e)))
        })
    }
}

impl Index {
    /// The item's entry in this index, or `None` when it lacks the index's keys (sparse).
    fn entry(&self, table_keys: &[String], item: &Item) -> Option<Item> {
        if !self.keys.iter().all(|k| item.contains_key(k)) {
            return None;
        }
        let projected = |name: &String| match &self.projection {
            Projection::All => true,
            Projection::KeysOnly => table_keys.contains(name) || self.keys.contains(name),
            Projection::Include(extra) => {
                table_keys.contains(name) || self.keys.contains(name) || extra.contains(name)
            }
        };
        Some(
            item.iter()
                .filter(|(name, _)| projected(name))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        )
    }

    /// Write units this index is charged for a write that takes the item from `before` to
    /// `after` (`None`: no item).
    pub fn writes(
        &self,
        table_keys: &[String],
        before: Option<&Item>,
        after: Option<&Item>,
    ) -> f64 {
        let old = before.and_then(|i| self.entry(table_keys, i));
        let new = after.and_then(|i| self.entry(table_keys, i));
        let kb = |e: &Item| units(item_size(e), 1024);
        match (old, new) {
            (None, None) => 0.0,
            (None, Some(new)) => kb(&new),
            (Some(old), None) => kb(&old),
            (Some(old), Some(new)) => {
                let index_key = |e: &Item| {
                    self.keys
                        .iter()
                        .map(|k| e.get(k).cloned())
                        .collect::<Vec<_>>()
                };
                if index_key(&old) != index_key(&new) {
                    // The entry moves: the old one is deleted and a new one put.
                    kb(&old) + kb(&new)
                } else if old != new {
                    units(item_size(&old).max(item_size(&new)), 1024)
                } else {
                    // Nothing the index holds changed, so DynamoDB does not write it.
                    0.0
                }
            }
        }
    }
}

/// What one write is charged: the table's write units and each index's.
#[derive(Debug, Default, PartialEq)]
pub struct WriteCost {
    pub base: f64,
    pub index: BTreeMap<String, f64>,
}

/// The charge for one write from `before` to `after`. A refused conditional write (`applied`
/// false) is charged on the table at the size it would have written, and writes no index.
/// In a transaction the table's units double (prepare and commit); index entries are
/// propagated outside the transaction, as ordinary writes.
pub fn bill(
    schema: &Schema,
    before: Option<&Item>,
    after: Option<&Item>,
    transactional: bool,
    applied: bool,
) -> WriteCost {
    let size = before.map_or(0, item_size).max(after.map_or(0, item_size));
    let base = units(size, 1024) * if transactional { 2.0 } else { 1.0 };
    let index = if applied {
        schema
            .indexes
            .iter()
            .map(|i| (i.name.clone(), i.writes(&schema.keys, before, after)))
            .filter(|(_, w)| *w > 0.0)
            .collect()
    } else {
        BTreeMap::new()
    };
    WriteCost { base, index }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().unwrap().clone()
    }

    fn schema(projection: Value) -> Schema {
        Schema::from_definition(&json!({
            "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "ByOwner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": projection,
            }],
        }))
        .unwrap()
    }

    fn all() -> Schema {
        schema(json!({"ProjectionType": "ALL"}))
    }

    fn keys_only() -> Schema {
        schema(json!({"ProjectionType": "KEYS_ONLY"}))
    }

    fn include() -> Schema {
        schema(json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["state"]}))
    }

    /// An item of about `kb` KB (mostly its `body`) owned by `owner`, in `state`.
    fn doc(owner: Option<&str>, state: &str, body_kb: usize) -> Item {
        let mut i = item(json!({
            "PK": {"S": "a"}, "SK": {"S": "b"}, "state": {"S": state},
            "body": {"S": "x".repeat(body_kb * 1024)},
        }));
        if let Some(o) = owner {
            i.insert("owner".into(), json!({"S": o}));
        }
        i
    }

    fn index_writes(s: &Schema, before: Option<&Item>, after: Option<&Item>) -> f64 {
        bill(s, before, after, false, true)
            .index
            .get("ByOwner")
            .copied()
            .unwrap_or(0.0)
    }

    #[test]
    fn the_schema_is_read_from_the_create_table_request() {
        let s = include();
        assert_eq!(s.keys, ["PK", "SK"]);
        assert_eq!(s.indexes[0].keys, ["owner"]);
        assert_eq!(
            s.indexes[0].projection,
            Projection::Include(vec!["state".into()])
        );
        assert!(Schema::from_definition(&json!({"TableName": "t"})).is_none());
    }

    #[test]
    fn a_put_that_gives_the_index_keys_writes_one_entry_at_its_projected_size() {
        let new = doc(Some("o"), "new", 3);
        // ALL projects the 3 KB body: 4 units. The others project a few bytes: 1.
        assert_eq!(index_writes(&all(), None, Some(&new)), 4.0);
        assert_eq!(index_writes(&keys_only(), None, Some(&new)), 1.0);
        assert_eq!(index_writes(&include(), None, Some(&new)), 1.0);
    }

    #[test]
    fn an_item_without_the_index_keys_is_not_in_the_index() {
        let sparse = doc(None, "new", 1);
        for s in [all(), keys_only(), include()] {
            assert_eq!(
                bill(&s, None, Some(&sparse), false, true).index,
                BTreeMap::new()
            );
            assert_eq!(s.entries(&sparse).count(), 0);
        }
        assert_eq!(all().entries(&doc(Some("o"), "new", 1)).count(), 1);
    }

    #[test]
    fn changing_the_index_key_deletes_and_puts_an_entry() {
        let (a, b) = (doc(Some("o1"), "new", 0), doc(Some("o2"), "new", 0));
        for s in [all(), keys_only(), include()] {
            assert_eq!(index_writes(&s, Some(&a), Some(&b)), 2.0);
        }
    }

    #[test]
    fn removing_the_keys_or_the_item_deletes_one_entry() {
        let indexed = doc(Some("o"), "new", 0);
        let unindexed = doc(None, "new", 0);
        for s in [all(), keys_only(), include()] {
            assert_eq!(index_writes(&s, Some(&indexed), Some(&unindexed)), 1.0);
            assert_eq!(index_writes(&s, Some(&indexed), None), 1.0);
        }
    }

    #[test]
    fn an_unchanged_key_writes_only_when_a_projected_attribute_changed() {
        let before = doc(Some("o"), "new", 0);
        let state_changed = doc(Some("o"), "done", 0);
        let mut body_changed = before.clone();
        body_changed.insert("body".into(), json!({"S": "other"}));
        // ALL projects everything.
        assert_eq!(
            index_writes(&all(), Some(&before), Some(&state_changed)),
            1.0
        );
        assert_eq!(
            index_writes(&all(), Some(&before), Some(&body_changed)),
            1.0
        );
        // KEYS_ONLY projects only keys, which did not change.
        assert_eq!(
            index_writes(&keys_only(), Some(&before), Some(&state_changed)),
            0.0
        );
        // INCLUDE projects `state`, not `body`.
        assert_eq!(
            index_writes(&include(), Some(&before), Some(&state_changed)),
            1.0
        );
        assert_eq!(
            index_writes(&include(), Some(&before), Some(&body_changed)),
            0.0
        );
        // Rewriting the same item writes no index.
        assert_eq!(index_writes(&all(), Some(&before), Some(&before)), 0.0);
    }

    #[test]
    fn every_index_is_billed_on_its_own() {
        let mut s = all();
        s.indexes.push(Index {
            name: "ByState".into(),
            keys: vec!["state".into()],
            projection: Projection::KeysOnly,
        });
        let cost = bill(&s, None, Some(&doc(Some("o"), "new", 2)), false, true);
        assert_eq!(cost.index["ByOwner"], 3.0);
        assert_eq!(cost.index["ByState"], 1.0);
    }

    #[test]
    fn a_write_is_billed_on_the_larger_of_the_item_before_and_after() {
        let big = doc(None, "new", 5);
        let small = doc(None, "new", 0);
        assert_eq!(
            bill(&all(), Some(&big), Some(&small), false, true).base,
            6.0
        );
        assert_eq!(
            bill(&all(), Some(&small), Some(&big), false, true).base,
            6.0
        );
        assert_eq!(bill(&all(), None, Some(&small), false, true).base, 1.0);
        // A delete is billed on the item it removes.
        assert_eq!(bill(&all(), Some(&big), None, false, true).base, 6.0);
    }

    #[test]
    fn a_transaction_doubles_the_table_units_but_not_the_index_entries() {
        let new = doc(Some("o"), "new", 1);
        let cost = bill(&all(), None, Some(&new), true, true);
        assert_eq!(cost.base, 4.0);
        assert_eq!(cost.index["ByOwner"], 2.0);
    }

    #[test]
    fn a_refused_conditional_write_is_charged_on_the_table_and_writes_no_index() {
        let old = doc(Some("o"), "new", 1);
        let new = doc(Some("o2"), "new", 0);
        let cost = bill(&all(), Some(&old), Some(&new), false, false);
        assert_eq!(cost.base, 2.0);
        assert!(cost.index.is_empty());
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        let i = item(json!({"ab": {"S": "xyz"}, "n": {"N": "12345"}, "t": {"BOOL": true}}));
        assert_eq!(item_size(&i), (2 + 3) + (1 + 3) + (1 + 1));
        assert_eq!(units(0, 1024), 1.0);
        assert_eq!(units(1024, 1024), 1.0);
        assert_eq!(units(1025, 1024), 2.0);
    }
}
