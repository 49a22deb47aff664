//! The static layer on an edited applied migration: production ran the old file long ago, so only
//! the statements the edit changed are news. Static findings on statements that are the same as
//! in the base's version of the file are dropped (the `edited-applied-migration` finding carries
//! the diff); when either version cannot be split into statements exactly, the whole file stays
//! linted.

use std::collections::HashSet;

use super::{Evidence, Finding};
use crate::plan::Classification;
use crate::sql::position::LineIndex;
use crate::sql::split::split;

/// Drop `statics` that sit on statements an edit left unchanged; returns notes saying what was
/// narrowed.
pub fn only_changed_statements(statics: &mut Vec<Finding>, ev: &Evidence) -> Vec<String> {
    let (Some(plan), Some(base)) = (ev.plan, ev.base) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for e in plan
        .head
        .iter()
        .filter(|e| e.class == Classification::Edited)
    {
        let (Some(bi), head) = (e.base_index, &ev.head.migrations[e.index]) else {
            continue;
        };
        let Some((changed, unchanged)) = changed_lines(&base.migrations[bi].text, &head.text)
        else {
            continue;
        };
        let before = statics.len();
        statics.retain(|f| {
            f.migration.as_deref() != Some(head.name.as_str())
                || f.line
                    .is_none_or(|l| changed.iter().any(|(a, b)| (*a..=*b).contains(&l)))
        });
        notes.push(format!(
            "static lint on edited `{}`: only the {} statements the edit changed ({unchanged} unchanged statements, applied long ago, not linted again; {} findings on them dropped)",
            head.name,
            changed.len(),
            before - statics.len()
        ));
    }
    notes
}

/// The line ranges of `new`'s statements that are not in `old` (compared with whitespace
/// collapsed), and how many are unchanged; `None` when either does not split exactly.
pub fn changed_lines(old: &str, new: &str) -> Option<(Vec<(usize, usize)>, usize)> {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let before: HashSet<String> = split(old)?.iter().map(|s| norm(s.text(old))).collect();
    let lines = LineIndex::new(new);
    let (mut changed, mut unchanged) = (Vec::new(), 0);
    for st in split(new)? {
        if before.contains(&norm(st.text(new))) {
            unchanged += 1;
        } else {
            changed.push((lines.line_col(st.start).0, lines.line_col(st.end).0));
        }
    }
    Some((changed, unchanged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_statement_an_edit_changed_is_new() {
        let old = "CREATE TABLE a (id int);\n\nALTER TABLE a ADD COLUMN b int;\n";
        let new = "CREATE TABLE a (id int);\n\nALTER TABLE a ADD COLUMN b bigint;\nCREATE INDEX i ON a (b);\n";
        let (changed, unchanged) = changed_lines(old, new).unwrap_or_default();
        assert_eq!(unchanged, 1);
        assert_eq!(changed, vec![(3, 3), (4, 4)]);
    }

    #[test]
    fn reformatting_a_statement_is_not_a_change() {
        let old = "ALTER TABLE a\n  ADD COLUMN b int;\n";
        let new = "ALTER TABLE a ADD COLUMN b int;\n";
        assert_eq!(changed_lines(old, new), Some((vec![], 1)));
    }
}
