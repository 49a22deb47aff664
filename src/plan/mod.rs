//! Compares the base set (what production has) with the head set (the checkout) and decides
//! what must be built.
//!
//! Each head migration is unchanged, new, edited (after the format's own checksum equality:
//! Prisma's is CRLF-tolerant), or a rename of a base migration; each base migration missing from
//! head is deleted (or renamed). A new migration that sorts before the last base migration (in
//! the format's order) is out of order. What the tool itself does with an edited or out-of-order
//! migration is its [`ToolVerdict`] (`prisma migrate deploy` applies a late-dated migration after
//! the others, a fresh database in between); the migrations the tool would apply on a database at
//! base are the format's pending set.
//!
//! The plan also gives the longest shared prefix (identical migrations in identical positions),
//! which is applied once and cloned, and says when incremental and from-scratch are provably the
//! same sequence.

use crate::discover::{Migration, MigrationSet};
use crate::format::prisma::Prisma;
use crate::format::{Format, HistoryCase, HistoryRow, ToolVerdict};

/// What happened to a migration between base and head.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum Classification {
    Unchanged,
    New {
        out_of_order_before: Option<String>,
    },
    Edited,
    /// A head migration whose content is a base migration under another name.
    Renamed {
        from: String,
    },
}

#[derive(Debug, Clone)]
pub struct HeadEntry {
    /// Index in the head set.
    pub index: usize,
    pub class: Classification,
    /// Index of the same-named (or renamed-from) base migration.
    pub base_index: Option<usize>,
    /// What the tool itself does with it, when it is edited or out of order.
    pub tool: Option<ToolVerdict>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// One entry per head migration, in head order.
    pub head: Vec<HeadEntry>,
    /// Base migrations with no head counterpart (neither same name nor renamed).
    pub deleted: Vec<usize>,
    /// The first `shared_prefix` migrations of base and head are identical (name and bytes).
    pub shared_prefix: usize,
    /// Head indices the tool would apply on a database at base ([`Format::pending`] on base's
    /// rows; Prisma: the migrations without a history row of the same name, in head order).
    pub deploy: Vec<usize>,
    /// Incremental (base + deploy) and from-scratch (head) are the same sequence of scripts.
    pub identical_sequences: bool,
}

impl Plan {
    pub fn new_count(&self) -> usize {
        self.deploy.len()
    }
}

/// Compare `base` and `head` as Prisma would ([`plan_with`] for any format).
pub fn plan(base: &MigrationSet, head: &MigrationSet) -> Plan {
    plan_with(&Prisma::default(), base, head)
}

/// Compare `base` and `head` by `format`'s rules (checksum equality, order, pending set, the
/// tool's verdicts).
pub fn plan_with(format: &dyn Format, base: &MigrationSet, head: &MigrationSet) -> Plan {
    let head_names: std::collections::HashSet<&str> =
        head.migrations.iter().map(|m| m.name.as_str()).collect();
    let last_base = base.migrations.iter().max_by(|a, b| format.compare(a, b));
    let mut claimed_renames = std::collections::HashSet::new();
    let entries: Vec<HeadEntry> = head
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| {
            classify(
                format,
                base,
                &head_names,
                last_base,
                &mut claimed_renames,
                i,
                m,
            )
        })
        .collect();
    let deleted: Vec<usize> = (0..base.migrations.len())
        .filter(|bi| {
            !head_names.contains(base.migrations[*bi].name.as_str())
                && !claimed_renames.contains(bi)
        })
        .collect();

    let shared_prefix = base
        .migrations
        .iter()
        .zip(&head.migrations)
        .take_while(|(b, h)| b.name == h.name && b.bytes == h.bytes)
        .count();
    let deploy = format.pending(&applied_rows(base), &head.migrations);
    // Incremental = base then deploy; scratch = head. Same when base is exactly head's prefix and
    // the deployed ones are exactly the rest, in order.
    let identical_sequences = shared_prefix == base.migrations.len()
        && deploy
            .iter()
            .copied()
            .eq(shared_prefix..head.migrations.len());
    Plan {
        head: entries,
        deleted,
        shared_prefix,
        deploy,
        identical_sequences,
    }
}

/// The history a database at base has: every base migration applied, in order.
fn applied_rows(base: &MigrationSet) -> Vec<HistoryRow> {
    base.migrations
        .iter()
        .map(|m| HistoryRow {
            name: m.name.clone(),
            checksum: Some(m.checksum.clone()),
            started_at: String::new(),
            finished_at: Some(String::new()),
            rolled_back_at: None,
            logs: None,
        })
        .collect()
}

/// One head migration against base: same name (unchanged or edited), a rename (a base migration
/// gone from head with the same content), or new (maybe out of order).
fn classify(
    format: &dyn Format,
    base: &MigrationSet,
    head_names: &std::collections::HashSet<&str>,
    last_base: Option<&Migration>,
    claimed_renames: &mut std::collections::HashSet<usize>,
    index: usize,
    m: &Migration,
) -> HeadEntry {
    let entry = |class, base_index, tool| HeadEntry {
        index,
        class,
        base_index,
        tool,
    };
    if let Some(bi) = base.migrations.iter().position(|b| b.name == m.name) {
        return if format.checksum_matches(&base.migrations[bi].checksum, &m.bytes) {
            entry(Classification::Unchanged, Some(bi), None)
        } else {
            let tool = format.verdict(HistoryCase::Edited { name: &m.name });
            entry(Classification::Edited, Some(bi), Some(tool))
        };
    }
    let renamed = base.migrations.iter().enumerate().find(|(bi, b)| {
        !head_names.contains(b.name.as_str())
            && !claimed_renames.contains(bi)
            && same_script(format, b, m)
    });
    if let Some((bi, b)) = renamed {
        claimed_renames.insert(bi);
        let class = Classification::Renamed {
            from: b.name.clone(),
        };
        return entry(class, Some(bi), None);
    }
    let before = last_base.filter(|last| format.sorts_before(m, last));
    let tool = before.map(|last| {
        format.verdict(HistoryCase::OutOfOrder {
            name: &m.name,
            before: &last.name,
        })
    });
    let class = Classification::New {
        out_of_order_before: before.map(|b| b.name.clone()),
    };
    entry(class, None, tool)
}

fn same_script(format: &dyn Format, a: &Migration, b: &Migration) -> bool {
    a.bytes == b.bytes || format.checksum_matches(&a.checksum, &b.bytes)
}

/// A short unified diff of an edit (at most `max_lines` lines).
pub fn unified_diff(
    old: &str,
    new: &str,
    old_name: &str,
    new_name: &str,
    max_lines: usize,
) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(old_name, new_name)
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max_lines {
        text
    } else {
        let mut s = lines[..max_lines].join("\n");
        s.push_str(&format!("\n… {} more lines", lines.len() - max_lines));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatKind;
    use crate::format::prisma::checksum;

    fn set(ms: &[(&str, &str)]) -> MigrationSet {
        MigrationSet {
            format: FormatKind::Prisma,
            dir: "prisma/migrations".into(),
            migrations: ms
                .iter()
                .map(|(n, sql)| Migration {
                    name: n.to_string(),
                    path: format!("prisma/migrations/{n}/migration.sql"),
                    bytes: sql.as_bytes().to_vec(),
                    text: sql.to_string(),
                    checksum: checksum(sql.as_bytes()),
                })
                .collect(),
            problems: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn clean_pull_request_is_one_sequence() {
        let p = plan(
            &set(&[("1_a", "A"), ("2_b", "B")]),
            &set(&[("1_a", "A"), ("2_b", "B"), ("3_c", "C"), ("4_d", "D")]),
        );
        assert_eq!(p.shared_prefix, 2);
        assert_eq!(p.deploy, vec![2, 3]);
        assert!(p.identical_sequences);
        assert!(p.deleted.is_empty());
    }

    #[test]
    fn edited_is_detected_with_crlf_tolerance() {
        let p = plan(
            &set(&[("1_a", "A\n"), ("2_b", "B\n")]),
            &set(&[("1_a", "A\r\n"), ("2_b", "B2\n")]),
        );
        assert_eq!(p.head[0].class, Classification::Unchanged);
        assert_eq!(p.head[1].class, Classification::Edited);
        assert!(!p.identical_sequences);
        assert_eq!(
            p.shared_prefix, 0,
            "CRLF differs in bytes: not shared for building"
        );
    }

    #[test]
    fn out_of_order_new_migration() {
        let p = plan(
            &set(&[("1_a", "A"), ("3_c", "C")]),
            &set(&[("1_a", "A"), ("2_b", "B"), ("3_c", "C")]),
        );
        assert_eq!(
            p.head[1].class,
            Classification::New {
                out_of_order_before: Some("3_c".into())
            }
        );
        assert_eq!(p.deploy, vec![1]);
        assert!(!p.identical_sequences);
        assert_eq!(p.shared_prefix, 1);
    }

    #[test]
    fn deleted_and_renamed() {
        let p = plan(
            &set(&[("1_a", "A"), ("2_b", "B"), ("3_c", "C")]),
            &set(&[("1_a", "A"), ("2_bb", "B")]),
        );
        assert_eq!(
            p.head[1].class,
            Classification::Renamed { from: "2_b".into() }
        );
        assert_eq!(p.deleted, vec![2]);
        assert_eq!(
            p.deploy,
            vec![1],
            "deploy applies a renamed migration again"
        );
    }

    #[test]
    fn the_tools_own_verdicts_ride_on_the_plan() {
        let p = plan(
            &set(&[("1_a", "A"), ("3_c", "C")]),
            &set(&[("1_a", "A2"), ("2_b", "B"), ("3_c", "C"), ("4_d", "D")]),
        );
        assert!(matches!(
            p.head[0].tool,
            Some(ToolVerdict::RefusesOnlyIn { .. })
        ));
        assert_eq!(p.head[1].tool, Some(ToolVerdict::Applies));
        assert_eq!(p.head[2].tool, None);
        assert_eq!(
            p.head[3].tool, None,
            "in order: nothing for the tool to say"
        );
    }

    #[test]
    fn diff_is_short_and_unified() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "base", "head", 20);
        assert!(d.contains("-b") && d.contains("+B"), "{d}");
    }
}
