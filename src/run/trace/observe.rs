//! Comparing the facts before and after a statement: [`observe()`] turns two snapshots into locks
//! taken, rewrites, scans, drops, renames, type changes and row changes; [`refine_row_changes`]
//! adds row counts for truncations and rewrites and whether an update touched pre-existing
//! columns.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::rows::{table_columns, try_count, try_fingerprint};
use super::snapshot::{Rel, Snapshot, display_ident};
use super::{Baseline, LockTaken, RowChanges, StatementTrace};

/// Compare two snapshots around a statement.
pub(super) fn observe(
    before: &Snapshot,
    after: &Snapshot,
    base: &mut Baseline,
    index_of: &HashMap<i64, i64>,
    st: &mut StatementTrace,
) {
    let pre = |oid: &i64| base.snap.rels.contains_key(oid);
    // A relation outside a scoped snapshot (dropped by the statement, say) is still in the
    // baseline's full list of relations.
    let name_of = |oid: &i64| {
        after
            .rels
            .get(oid)
            .or(before.rels.get(oid))
            .or(base.snap.rels.get(oid))
            .map(Rel::qualified)
            .unwrap_or_else(|| format!("oid {oid}"))
    };
    // Locks newly held.
    for (oid, modes) in &after.locks {
        let old = before.locks.get(oid);
        for m in modes {
            if old.is_some_and(|o| o.contains(m)) {
                continue;
            }
            let table_oid = index_of.get(oid).copied().unwrap_or(*oid);
            let Some(rel) = after
                .rels
                .get(oid)
                .or(before.rels.get(oid))
                .or(base.snap.rels.get(oid))
            else {
                continue;
            };
            if rel.kind == "S" || rel.kind == "v" {
                continue;
            }
            st.locks.push(LockTaken {
                relation: rel.qualified(),
                table: name_of(&table_oid),
                table_oid,
                mode: m.clone(),
                preexisting: pre(&table_oid),
            });
        }
    }
    for (oid, rel) in &before.rels {
        match after.rels.get(oid) {
            None => {
                if rel.is_table() && pre(oid) {
                    st.dropped_tables.push(rel.qualified());
                }
            }
            Some(now) => {
                if now.filenode != rel.filenode && rel.is_table() && pre(oid) && rel.kind != "m" {
                    st.rewritten
                        .push((rel.qualified(), base.rows.get(oid).copied().unwrap_or(0)));
                }
                if (now.name != rel.name || now.schema != rel.schema) && rel.is_table() && pre(oid)
                {
                    st.renamed_tables.push((rel.qualified(), now.qualified()));
                }
            }
        }
    }
    for ((rel, num), col) in &before.cols {
        if !pre(rel) || !base.snap.cols.contains_key(&(*rel, *num)) {
            continue;
        }
        let table = name_of(rel);
        match after.cols.get(&(*rel, *num)) {
            None => {
                if after.rels.contains_key(rel) {
                    st.dropped_columns
                        .push((table, col.name.clone(), col.type_sql.clone()));
                }
            }
            Some(now) => {
                if now.name != col.name {
                    st.renamed_columns
                        .push((table.clone(), col.name.clone(), now.name.clone()));
                }
                // An enum swapped for another enum is how Prisma changes labels: reported by
                // drops-enum-value, not as a type change.
                let changed = now.type_oid != col.type_oid || now.typmod != col.typmod;
                if changed && !(now.is_enum && col.is_enum) {
                    st.type_changes.push((
                        table,
                        now.name.clone(),
                        col.type_sql.clone(),
                        now.type_sql.clone(),
                    ));
                }
            }
        }
    }
    for (oid, name) in &before.schemas {
        if !after.schemas.contains_key(oid) && base.snap.schemas.contains_key(oid) {
            st.dropped_schemas.push(display_ident(name));
        }
    }
    // Enum labels that existed before the pull request: compared with the last labels seen under
    // the same name, so Prisma's swap (new type, rename old, rename new, drop old) is followed.
    for (name, known) in base.enum_labels.iter() {
        if let Some((_, now)) = after.enums.values().find(|(n, _)| n == name) {
            let removed: Vec<String> = known.iter().filter(|l| !now.contains(l)).cloned().collect();
            if !removed.is_empty() {
                st.dropped_enum_values.push((name.clone(), removed));
            }
        }
    }
    for (oid, (scans, _ins, upd, del)) in &after.stats {
        if !pre(oid) {
            continue;
        }
        let (s0, _, u0, d0) = before.stats.get(oid).copied().unwrap_or((0, 0, 0, 0));
        if *scans > s0 {
            st.scanned.push(name_of(oid));
        }
        if *upd > u0 || *del > d0 {
            st.row_changes.push(RowChanges {
                table: name_of(oid),
                updated: upd - u0,
                deleted: del - d0,
                ..RowChanges::default()
            });
        }
    }
    st.lock_timeout = after.lock_timeout.clone();
    for (name, known) in base.enum_labels.iter_mut() {
        if let Some((_, now)) = after.enums.values().find(|(n, _)| n == name) {
            known.retain(|l| now.contains(l));
        }
    }
}

/// Row counts for truncations and rewrites, and whether an UPDATE touched pre-existing columns
/// (a backfill of a new column does not). Returns the tables it queried (and so locked).
pub(super) async fn refine_row_changes(
    conn: &mut PgConnection,
    after: &Snapshot,
    base: &mut Baseline,
    st: &mut StatementTrace,
) -> Vec<i64> {
    let mut queried = Vec::new();
    let upper = st.text.trim_start().to_ascii_uppercase();
    // TRUNCATE (and DELETE inside functions) show as a smaller row count.
    let candidates: Vec<i64> = base.rows.keys().copied().collect();
    for oid in candidates {
        let Some(rel) = after.rels.get(&oid) else {
            continue;
        };
        let before_rows = base.rows.get(&oid).copied().unwrap_or(0);
        let touched = st.row_changes.iter().any(|r| r.table == rel.qualified())
            || st.rewritten.iter().any(|(t, _)| *t == rel.qualified())
            || upper.starts_with("TRUNCATE")
            || upper.starts_with("DO")
            || upper.starts_with("SELECT")
            || upper.starts_with("CALL");
        if !touched || before_rows == 0 {
            continue;
        }
        queried.push(oid);
        // A failed query aborts the transaction, whose COMMIT then rolls back: what is known is
        // no longer what the clone has.
        let now = try_count(conn, rel).await.unwrap_or_else(|_| {
            base.known.valid = false;
            0
        });
        if now < before_rows {
            match st
                .row_changes
                .iter_mut()
                .find(|r| r.table == rel.qualified())
            {
                Some(rc) => rc.truncated_from = Some(before_rows),
                None => st.row_changes.push(RowChanges {
                    table: rel.qualified(),
                    deleted: before_rows - now,
                    truncated_from: Some(before_rows),
                    ..RowChanges::default()
                }),
            }
        }
        base.rows.insert(oid, now);
        // Values of pre-existing columns changed?
        let old_cols: Vec<String> = table_columns(&base.snap, oid)
            .into_iter()
            .filter(|c| after.cols.values().any(|x| &x.name == c))
            .collect();
        let present: Vec<String> = table_columns(after, oid)
            .into_iter()
            .filter(|c| old_cols.contains(c))
            .collect();
        if let (Some(prev), Some(fp)) = (
            base.fingerprints.get(&oid).cloned(),
            try_fingerprint(conn, rel, &present)
                .await
                .unwrap_or_else(|_| {
                    base.known.valid = false;
                    None
                }),
        ) {
            let same_columns = present.len() == table_columns(&base.snap, oid).len();
            if same_columns
                && prev != fp
                && let Some(rc) = st
                    .row_changes
                    .iter_mut()
                    .find(|r| r.table == rel.qualified())
            {
                rc.changed_existing_columns = true;
            }
            if same_columns {
                base.fingerprints.insert(oid, fp);
            }
        }
    }
    queried
}
