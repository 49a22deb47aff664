//! Helpers shared by the rules that read the trace (observed rules): locating a finding at the
//! statement that caused it, and classifying type changes.

use std::time::Duration;

use super::Rule;
use super::held::HeldWork;
use crate::check::{Evidence, Finding, Source};
use crate::run::trace::{MigrationTrace, StatementTrace};
use crate::sql::split::excerpt;

/// A finding of `rule` at statement `st` of migration `t`.
pub fn at(rule: &Rule, t: &MigrationTrace, st: &StatementTrace, message: String) -> Finding {
    let mut f = Finding::new(rule, Source::Observed, message)
        .migration(&t.name)
        .file(&t.path)
        .at(st.line, st.column);
    if t.per_statement {
        f = f.statement(excerpt(&st.text, 160));
    } else {
        f = f.evidence("traced per file: the file could not be split into statements exactly");
    }
    f
}

/// ", 3 seeded rows in public.\"T\"" (or why there were none), for evidence that a time was measured
/// on few rows: production tables are larger, so a short time never lowers a severity.
pub fn rows_note(ev: &Evidence, table: &str) -> String {
    // The seed names tables `"public"."T"`, the trace `public."T"`: compare without quotes.
    let bare = |name: &str| name.replace('"', "");
    let rows = ev
        .seed
        .and_then(|s| s.filled.iter().find(|(k, _)| bare(k) == bare(table)))
        .map(|(_, n)| n);
    match rows {
        Some(n) => format!(" on {n} seeded rows; production tables are larger"),
        None => " on a table the seeded run did not fill".to_string(),
    }
}

/// A finding of `rule` for work done under a lock an earlier statement of the same transaction
/// took ([`super::held::held_work`]): `blocked` says what waits.
pub fn held_finding(
    rule: &Rule,
    ev: &Evidence,
    t: &MigrationTrace,
    h: &HeldWork,
    blocked: &str,
) -> Finding {
    at(
        rule,
        t,
        h.statement,
        format!(
            "{} on {} while the transaction holds {}: {blocked} on {} wait until the migration commits",
            h.work,
            h.table,
            h.lock_phrase(),
            h.table
        ),
    )
    .evidence(format!(
        "observed: {} held from line {} through this statement ({}{})",
        h.held.mode,
        h.held.line,
        human(h.statement.duration),
        rows_note(ev, &h.table)
    ))
}

/// Run `each` over every traced statement, collecting findings.
pub fn for_each_statement(
    traces: &[MigrationTrace],
    mut each: impl FnMut(&MigrationTrace, &StatementTrace, &mut Vec<Finding>),
) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in traces {
        for st in &t.statements {
            each(t, st, &mut out);
        }
    }
    out
}

pub fn human(d: Duration) -> String {
    crate::fmt::human_ms(d.as_millis() as u64)
}

/// Whether `old` → `new` can hold every old value (no data loss, no failing cast).
pub fn is_widening(old: &str, new: &str) -> bool {
    fn len(t: &str) -> Option<u32> {
        t.split_once('(')
            .and_then(|(_, r)| r.trim_end_matches(')').split(',').next())
            .and_then(|n| n.trim().parse().ok())
    }
    fn scale(t: &str) -> Option<u32> {
        t.split_once('(')
            .and_then(|(_, r)| r.trim_end_matches(')').split(',').nth(1))
            .and_then(|n| n.trim().parse().ok())
    }
    let base = |t: &str| t.split('(').next().unwrap_or(t).trim().to_string();
    let (bo, bn) = (base(old), base(new));
    let ints = ["smallint", "integer", "bigint"];
    if let (Some(a), Some(b)) = (
        ints.iter().position(|x| *x == bo),
        ints.iter().position(|x| *x == bn),
    ) {
        return b >= a;
    }
    if ints.contains(&bo.as_str())
        && (bn == "numeric" && len(new).is_none_or(|p| p >= 19) || bn == "text")
    {
        return true;
    }
    let texty = ["character varying", "character", "text", "citext"];
    if texty.contains(&bo.as_str()) && bn == "text" {
        return true;
    }
    if bo == "character varying" && bn == "character varying" {
        return match (len(old), len(new)) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => b >= a,
        };
    }
    if bo == "numeric" && bn == "numeric" {
        return match (len(old), len(new)) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(p1), Some(p2)) => {
                let (s1, s2) = (scale(old).unwrap_or(0), scale(new).unwrap_or(0));
                p2 >= p1 && s2 >= s1 && (p2 - s2) >= (p1 - s1)
            }
        };
    }
    if bo == "real" && bn == "double precision" {
        return true;
    }
    if bo == "timestamp without time zone" && bn == "timestamp with time zone" {
        return true;
    }
    if bo.starts_with("timestamp") && bn == bo {
        return true; // precision changes round, they do not fail
    }
    if bo == "json" && bn == "jsonb" {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_widening;

    #[test]
    fn widening_and_narrowing() {
        assert!(is_widening("integer", "bigint"));
        assert!(!is_widening("bigint", "integer"));
        assert!(is_widening(
            "character varying(50)",
            "character varying(100)"
        ));
        assert!(!is_widening(
            "character varying(100)",
            "character varying(50)"
        ));
        assert!(is_widening("character varying(50)", "text"));
        assert!(!is_widening("text", "character varying(10)"));
        assert!(!is_widening("text", "integer"));
        assert!(is_widening("numeric(10,2)", "numeric(12,2)"));
        assert!(!is_widening("numeric(10,2)", "numeric(10,1)"));
        assert!(!is_widening("timestamp(3) without time zone", "date"));
    }
}
