//! Which base tables the new migrations can reach, so the seeded run fills, analyzes and
//! fingerprints those instead of every table of a long history (911 tables at 5,000 migrations,
//! where seeding all of them cost more than the pull request's own migrations).
//!
//! The focus is an over-approximation read from the migrations' text: every identifier in it
//! (quoted exactly, unquoted lower-cased and as written, including words inside string literals and
//! function bodies) that names a base table; then every ancestor of those through foreign keys
//! (their rows need parent rows); then the partitions and inheritance children of the lot.
//!
//! It is checked, not trusted: the trace records every relation lock each statement takes, and
//! [`outside`] names the pre-existing tables locked outside the focus (a base function called by
//! the migration, a delete reaching a child table through its foreign key, a `DROP SCHEMA …
//! CASCADE`). The pipeline then traces again on a fresh clone with every table seeded, so no check
//! runs on less than it claims.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

pub use super::scope::Scope;
use super::trace::MigrationTrace;

/// The focus of a seeded run, with what it was drawn from.
#[derive(Debug, Clone)]
pub struct Focus {
    pub scope: Scope,
    /// Base tables (ordinary, partitioned, materialized) in the database, the history table
    /// (never seeded) apart.
    pub total: usize,
    /// Of those, the ones the migrations' text names (the statements' own tables; the rest of
    /// the scope are their foreign-key ancestors and partitions).
    pub named: BTreeSet<i64>,
}

/// Every identifier-like word of the texts: quoted identifiers exactly (`"User"`), bare words
/// both lower-cased (how PostgreSQL folds them) and as written (a table name inside a string
/// literal, e.g. `format('%I', 'User')`).
pub fn words<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for text in texts {
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) if chars.peek().is_some_and(|(_, n)| *n == '"') => {
                            chars.next();
                            name.push('"');
                        }
                        Some((_, '"')) | None => break,
                        Some((_, ch)) => name.push(ch),
                    }
                }
                out.insert(name);
            } else if c.is_alphabetic() || c == '_' {
                let mut end = i + c.len_utf8();
                while let Some(&(j, n)) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '$' {
                        end = j + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &text[i..end];
                out.insert(word.to_lowercase());
                out.insert(word.to_string());
            }
        }
    }
    out
}

/// The focus for migrations whose text yielded `words`, read from the database `conn` is on
/// (a clone of base). `exclude`: tables never seeded (the history table).
pub async fn focus(
    conn: &mut PgConnection,
    words: &BTreeSet<String>,
    exclude: &[String],
) -> Result<Focus, sqlx::Error> {
    let tables: Vec<(i64, String)> = sqlx::query_as(
        "SELECT c.oid::int8, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_%'",
    )
    .fetch_all(&mut *conn)
    .await?;
    // (child, parent, ON DELETE action)
    let fks: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT conrelid::int8, confrelid::int8, confdeltype::text FROM pg_constraint WHERE contype = 'f'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let inherits: Vec<(i64, i64)> =
        sqlx::query_as("SELECT inhrelid::int8, inhparent::int8 FROM pg_inherits")
            .fetch_all(&mut *conn)
            .await?;
    let names: BTreeMap<i64, &str> = tables.iter().map(|(o, n)| (*o, n.as_str())).collect();
    let named: BTreeSet<i64> = tables
        .iter()
        .filter(|(_, n)| words.contains(n) && !exclude.contains(n))
        .map(|(o, _)| *o)
        .collect();
    let scope = closure(&named, &fks, &inherits);
    let scope = scope
        .into_iter()
        .filter(|o| names.contains_key(o))
        .collect();
    Ok(Focus {
        scope: Scope::Only(scope),
        total: tables.iter().filter(|(_, n)| !exclude.contains(n)).count(),
        named,
    })
}

/// Named tables → + all their ancestors (seeded rows need parent rows) → + inheritance children.
///
/// Children are left out on purpose: most pull requests create tables pointing at existing ones,
/// add columns or indexes, and a hub table's children (and their cascades) can be a quarter of
/// the schema. A statement that does reach a child (a delete on the parent, a key type change)
/// locks it, and the run is repeated with every table seeded.
fn closure(
    named: &BTreeSet<i64>,
    fks: &[(i64, i64, String)],
    inherits: &[(i64, i64)],
) -> BTreeSet<i64> {
    let mut set = named.clone();
    let grow = |set: &mut BTreeSet<i64>, step: &dyn Fn(&BTreeSet<i64>) -> Vec<i64>| loop {
        let new: Vec<i64> = step(set).into_iter().filter(|o| !set.contains(o)).collect();
        if new.is_empty() {
            break;
        }
        set.extend(new);
    };
    grow(&mut set, &|s| {
        fks.iter()
            .filter(|(c, _, _)| s.contains(c))
            .map(|(_, p, _)| *p)
            .collect()
    });
    grow(&mut set, &|s| {
        inherits
            .iter()
            .filter(|(_, p)| s.contains(p))
            .map(|(c, _)| *c)
            .collect()
    });
    set
}

/// Pre-existing tables the traced statements locked outside `scope`, by name, sorted.
/// `exclude`: qualified names that do not count (the history table).
pub fn outside(traces: &[MigrationTrace], scope: &Scope, exclude: &[&str]) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for t in traces {
        for st in &t.statements {
            for l in &st.locks {
                if l.preexisting
                    && !scope.contains(l.table_oid)
                    && !exclude.contains(&l.table.as_str())
                {
                    out.insert(l.table.clone());
                }
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_bare_identifiers_and_keep_quoted_ones() {
        let w = words([
            "ALTER TABLE \"public\".\"User\" ADD COLUMN \"na\"\"me\" TEXT;\nUPDATE Orders SET x = 1;",
            "DO $$ BEGIN EXECUTE format('DELETE FROM %I', 'Invoice'); END $$;",
        ]);
        for expected in [
            "User", "public", "na\"me", "orders", "Orders", "Invoice", "invoice", "delete",
        ] {
            assert!(w.contains(expected), "{expected} missing from {w:?}");
        }
        assert!(!w.contains("user"), "a quoted name is not folded");
    }

    #[test]
    fn closure_takes_ancestors_and_partitions_not_children() {
        // 2 -> 1 (2 references 1), 3 -> 2 (cascade), 2 -> 4, 4 -> 5; 6 unrelated;
        // 7 a partition of 2; 9 -> 8 unrelated.
        let fks = vec![
            (2, 1, "r".to_string()),
            (3, 2, "c".to_string()),
            (2, 4, "a".to_string()),
            (4, 5, "a".to_string()),
            (9, 8, "c".to_string()),
        ];
        let inherits = vec![(7, 2)];
        let named = BTreeSet::from([2]);
        let got = closure(&named, &fks, &inherits);
        assert_eq!(got, BTreeSet::from([1, 2, 4, 5, 7]));
    }
}
