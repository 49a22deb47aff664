//! The order tables are filled in, and how each row gets each of its foreign keys: parents
//! first; a foreign-key cycle is broken at the table with the fewest keys to break, writing a
//! nullable key NULL (or a deferrable one as a placeholder under `SET CONSTRAINTS … DEFERRED`)
//! and pointing it at a real row once the parent is filled. A self-reference points at another
//! row (nullable) or at the row itself (NOT NULL).

use std::collections::BTreeSet;

use super::catalog::Table;

/// How a row gets the value of one foreign key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A row of the parent, filled before (or holding rows from the history).
    Parent,
    /// The row's own key (a NOT NULL self-reference).
    SameRow,
    /// NULL at first, then a parent row once every table is filled.
    Null,
    /// A placeholder under `SET CONSTRAINTS … DEFERRED`, then a parent row.
    Deferred,
}

impl Link {
    /// Whether the key is set by an UPDATE once every table is filled.
    pub fn fixed_later(self) -> bool {
        matches!(self, Link::Null | Link::Deferred)
    }
}

/// One table to fill: its index in the table list, and a [`Link`] per foreign key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub table: usize,
    pub links: Vec<Link>,
    /// Steps of the same batch (consecutive) do not depend on each other: they can be sent
    /// together.
    pub batch: usize,
    /// In a cycle of NOT NULL, non-deferrable foreign keys: tried as it is (its parents may
    /// hold rows from the history), and said so when it fails.
    pub stuck: bool,
}

/// The steps filling `tables`, in batches: first every table whose parents are filled; when
/// only cycles are left, every table whose missing parents are all behind nullable keys (those
/// keys written NULL for now); when only NOT NULL cycles are left, one table of them through its
/// deferrable keys (`deferrable`); what is left then is tried as it is.
pub fn order(tables: &[Table], deferrable: bool) -> Vec<Step> {
    let in_set: BTreeSet<i64> = tables.iter().map(|t| t.oid).collect();
    let mut placed: BTreeSet<i64> = BTreeSet::new();
    let mut pending: Vec<usize> = (0..tables.len()).collect();
    let mut steps = Vec::new();
    while !pending.is_empty() {
        let unmet: Vec<(usize, Vec<usize>)> = pending
            .iter()
            .map(|&i| (i, unmet(&tables[i], &in_set, &placed)))
            .collect();
        let ready = |cost: Option<usize>| -> Vec<(usize, Vec<usize>)> {
            unmet
                .iter()
                .filter(|(i, keys)| breaking_cost(&tables[*i], keys, false) == cost)
                .cloned()
                .collect()
        };
        let mut batch: Vec<(usize, Vec<usize>)> = unmet
            .iter()
            .filter(|(_, keys)| keys.is_empty())
            .cloned()
            .collect();
        if batch.is_empty() {
            batch = in_cycle_order(tables, ready(Some(0)), &placed);
        }
        if batch.is_empty() {
            let best = unmet
                .iter()
                .filter_map(|(i, keys)| {
                    let cost = breaking_cost(&tables[*i], keys, deferrable)?;
                    Some(((cost, keys.len(), *i), keys.clone()))
                })
                .min_by_key(|(cost, _)| *cost);
            batch = best
                .map(|((_, _, i), keys)| vec![(i, keys)])
                .unwrap_or_default();
        }
        if batch.is_empty() {
            for &i in &pending {
                let mut s = step(&tables[i], i, &[], deferrable, steps.len());
                s.stuck = true;
                steps.push(s);
            }
            break;
        }
        let b = steps.len();
        for (i, keys) in &batch {
            placed.insert(tables[*i].oid);
            steps.push(step(&tables[*i], *i, keys, deferrable, b));
        }
        pending.retain(|i| !batch.iter().any(|(j, _)| j == i));
    }
    steps
}

/// Tables of nullable cycles, all filled in one batch: each after as many of its parents as
/// possible (greedily, fewest keys left for later first), so that only the keys closing a cycle
/// are written NULL for now; the others take parent rows written earlier in the same batch.
fn in_cycle_order(
    tables: &[Table],
    mut rest: Vec<(usize, Vec<usize>)>,
    placed: &BTreeSet<i64>,
) -> Vec<(usize, Vec<usize>)> {
    let mut before = placed.clone();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let open = |(i, keys): &(usize, Vec<usize>)| -> Vec<usize> {
            let t = &tables[*i];
            keys.iter()
                .copied()
                .filter(|&k| !before.contains(&t.fks[k].parent))
                .collect()
        };
        let Some(pos) = (0..rest.len()).min_by_key(|&p| (open(&rest[p]).len(), rest[p].0)) else {
            break;
        };
        let next = rest.remove(pos);
        let broken = open(&next);
        before.insert(tables[next.0].oid);
        out.push((next.0, broken));
    }
    out
}

/// The foreign keys of `t` whose parent (another table of the set) is not filled yet.
fn unmet(t: &Table, in_set: &BTreeSet<i64>, placed: &BTreeSet<i64>) -> Vec<usize> {
    (0..t.fks.len())
        .filter(|&k| {
            let p = t.fks[k].parent;
            p != t.oid && in_set.contains(&p) && !placed.contains(&p)
        })
        .collect()
}

/// How many of `keys` must be deferred (rather than written NULL) to fill `t` before their
/// parents; `None` when one of them can be neither.
fn breaking_cost(t: &Table, keys: &[usize], deferrable: bool) -> Option<usize> {
    let mut deferred = 0;
    for &k in keys {
        let fk = &t.fks[k];
        if t.nullable(&fk.cols) {
            continue;
        }
        if !(deferrable && fk.deferrable) {
            return None;
        }
        deferred += 1;
    }
    Some(deferred)
}

/// The step filling `t` (index `i`) in `batch`, with `broken`: its foreign keys whose parents
/// come later.
fn step(t: &Table, i: usize, broken: &[usize], deferrable: bool, batch: usize) -> Step {
    let links = t
        .fks
        .iter()
        .enumerate()
        .map(|(k, fk)| {
            if !broken.contains(&k) && fk.parent != t.oid {
                Link::Parent
            } else if t.nullable(&fk.cols) {
                Link::Null
            } else if fk.parent == t.oid {
                Link::SameRow
            } else if deferrable && fk.deferrable {
                Link::Deferred
            } else {
                Link::Parent
            }
        })
        .collect();
    Step {
        table: i,
        links,
        batch,
        stuck: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::seed::catalog::{Column, ForeignKey};

    fn col(name: &str, not_null: bool) -> Column {
        Column {
            name: name.into(),
            attnum: 1,
            type_sql: "integer".into(),
            base_sql: "integer".into(),
            typtype: "b".into(),
            category: "N".into(),
            not_null,
            has_default: false,
            identity: false,
            generated: false,
            typmod_len: None,
        }
    }

    /// A table `oid` whose foreign keys are (column, parent, NOT NULL, deferrable).
    fn table(oid: i64, fks: &[(&str, i64, bool, bool)]) -> Table {
        let mut columns = vec![col("id", true)];
        columns.extend(fks.iter().map(|(c, _, nn, _)| col(c, *nn)));
        let mut t = Table::empty(oid, format!("t{oid}"));
        t.columns = columns;
        t.fks = fks
            .iter()
            .map(|(c, p, _, d)| ForeignKey {
                name: format!("fk_{c}"),
                cols: vec![c.to_string()],
                parent: *p,
                parent_qualified: format!("t{p}"),
                parent_cols: vec!["id".into()],
                deferrable: *d,
            })
            .collect();
        t.uniques = vec![vec!["id".into()]];
        t
    }

    type Spec<'a> = (i64, &'a [(&'a str, i64, bool, bool)]);

    /// [`order`] over tables given as (oid, foreign keys), as (oid, links, stuck) per step.
    fn ordered(spec: &[Spec], deferrable: bool) -> Vec<(i64, Vec<Link>, bool)> {
        let tables: Vec<Table> = spec.iter().map(|(oid, fks)| table(*oid, fks)).collect();
        order(&tables, deferrable)
            .iter()
            .map(|s| (tables[s.table].oid, s.links.clone(), s.stuck))
            .collect()
    }

    #[test]
    fn parents_come_first() {
        let got = ordered(&[(2, &[("a", 1, true, false)]), (1, &[])], true);
        assert_eq!(got, [(1, vec![], false), (2, vec![Link::Parent], false)]);
    }

    #[test]
    fn a_cycle_breaks_at_its_nullable_key() {
        // users.accountId (nullable) -> accounts; accounts.ownerId (NOT NULL) -> users.
        let spec: [Spec; 2] = [
            (1, &[("accountId", 2, false, false)]),
            (2, &[("ownerId", 1, true, false)]),
        ];
        let want = [(1, vec![Link::Null], false), (2, vec![Link::Parent], false)];
        assert_eq!(ordered(&spec, true), want);
    }

    #[test]
    fn nullable_cycles_are_broken_in_one_batch() {
        // a.b -> b and b.a -> a, both nullable; c.a (NOT NULL) -> a waits for a.
        let spec: [Spec; 3] = [
            (1, &[("b", 2, false, false)]),
            (2, &[("a", 1, false, false)]),
            (3, &[("a", 1, true, false)]),
        ];
        let tables: Vec<Table> = spec.iter().map(|(oid, fks)| table(*oid, fks)).collect();
        let steps = order(&tables, true);
        let batches: Vec<usize> = steps.iter().map(|s| s.batch).collect();
        assert_eq!(batches, [0, 0, 2]);
        // Only the key closing the cycle waits: b.a takes a's rows, written just before.
        let want = [
            (1, vec![Link::Null], false),
            (2, vec![Link::Parent], false),
            (3, vec![Link::Parent], false),
        ];
        assert_eq!(ordered(&spec, true), want);
    }

    #[test]
    fn self_references_point_at_rows_of_the_table() {
        let spec: [Spec; 2] = [
            (1, &[("parentId", 1, false, false)]),
            (2, &[("rootId", 2, true, false)]),
        ];
        let want = [
            (1, vec![Link::Null], false),
            (2, vec![Link::SameRow], false),
        ];
        assert_eq!(ordered(&spec, true), want);
    }

    #[test]
    fn not_null_cycles_use_deferrable_keys_or_are_stuck() {
        let spec: [Spec; 2] = [(1, &[("b", 2, true, true)]), (2, &[("a", 1, true, false)])];
        let deferred = [
            (1, vec![Link::Deferred], false),
            (2, vec![Link::Parent], false),
        ];
        assert_eq!(ordered(&spec, true), deferred);
        let stuck = [(1, vec![Link::Parent], true), (2, vec![Link::Parent], true)];
        assert_eq!(ordered(&spec, false), stuck);
    }
}
