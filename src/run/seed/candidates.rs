//! Values a constraint accepts, for a table whose synthetic rows it refused.
//!
//! A CHECK: candidates per column are drawn from the constraint's own literals (`status IN
//! ('draft', 'sent')`, `qty BETWEEN 1 AND 10` gives 0, 1, 2, 9, 10, 11…), the enum's labels, a
//! few ordinary values, and NULL when the column is nullable; the server then evaluates the
//! constraint over their combinations and keeps those it accepts (non-NULL first). A partitioned
//! table with no partition for the row: the partitions' lower bounds and listed values.

use sqlx::PgConnection;

use super::catalog::{Check, Column, Table};
use super::fill::{exec, pg_error, undo};
use crate::sql::quote::{quote_ident, quote_literal};

/// Columns, and rows of values for them (text, `None` for NULL); `None` when nothing was found.
pub type Combos = Option<(Vec<String>, Vec<Vec<Option<String>>>)>;

/// Candidates per column at most.
const PER_COLUMN: usize = 16;

/// Values meeting `t`'s CHECK `name` (or the domain constraint of that name), for `rows` rows.
/// `done`: columns already given values (a domain CHECK shared by several columns is met one
/// column at a time).
pub async fn for_check(
    conn: &mut PgConnection,
    t: &Table,
    name: &str,
    rows: i64,
    done: &[&String],
) -> Result<Combos, sqlx::Error> {
    let checks: Vec<&Check> = t.checks.iter().filter(|c| c.name == name).collect();
    let Some(check) = checks
        .iter()
        .find(|c| !c.cols.iter().all(|col| done.contains(&col)))
        .or(checks.first())
    else {
        return Ok(None);
    };
    let Some(sql) = query(t, check, rows) else {
        return Ok(None);
    };
    exec(conn, "SAVEPOINT cigate_check").await?;
    let found = sqlx::query_scalar::<_, Vec<Option<String>>>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await;
    match found {
        Ok(found) => {
            exec(conn, "RELEASE SAVEPOINT cigate_check").await?;
            Ok((!found.is_empty()).then(|| (check.cols.clone(), found)))
        }
        // A candidate the type does not accept: nothing found.
        Err(e) if pg_error(&e).is_some() => {
            undo(conn, "cigate_check").await?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The query returning up to `rows` combinations of candidates `check` accepts.
fn query(t: &Table, check: &Check, rows: i64) -> Option<String> {
    if check.cols.is_empty() || check.cols.len() > 3 {
        return None;
    }
    let (strings, numbers) = literals(&check.expr);
    let mut froms = Vec::new();
    let mut refs = Vec::new();
    for (j, name) in check.cols.iter().enumerate() {
        let c = t.column(name).filter(|c| !c.generated)?;
        let alias = if check.domain {
            "value".to_string()
        } else {
            quote_ident(name)
        };
        let mut source = if c.typtype == "e" {
            format!(
                "SELECT e::text AS v FROM unnest(enum_range(NULL::{})) e",
                c.base_sql
            )
        } else {
            let lits: Vec<String> = candidates(c, &strings, &numbers)
                .iter()
                .map(|v| quote_literal(v))
                .collect();
            format!("SELECT v FROM unnest(ARRAY[{}]::text[]) v", lits.join(", "))
        };
        if !c.not_null {
            source.push_str(" UNION ALL SELECT NULL");
        }
        froms.push(format!(
            "(SELECT z.v::{} AS {alias} FROM ({source}) z) s{j}",
            c.base_sql
        ));
        refs.push(format!("s{j}.{alias}"));
    }
    let texts: Vec<String> = refs.iter().map(|r| format!("{r}::text")).collect();
    Some(format!(
        "SELECT ARRAY[{}] FROM {} WHERE ({}) IS NOT FALSE ORDER BY num_nulls({}) LIMIT {rows}",
        texts.join(", "),
        froms.join(" CROSS JOIN "),
        check.expr,
        refs.join(", ")
    ))
}

/// Candidate values (as text) for `c`, from a constraint's string and number literals.
fn candidates(c: &Column, strings: &[String], numbers: &[f64]) -> Vec<String> {
    let mut out: Vec<String> = match c.category.as_str() {
        "N" => {
            let mut xs: Vec<f64> = numbers.to_vec();
            xs.extend(strings.iter().filter_map(|s| s.trim().parse::<f64>().ok()));
            let mut out = Vec::new();
            for x in xs {
                out.extend([x, x + 1.0, x - 1.0].map(number));
            }
            out.extend(["0", "1", "2", "10", "100", "1000"].map(String::from));
            out
        }
        "B" => vec!["true".into(), "false".into()],
        "D" => {
            let mut out: Vec<String> = strings
                .iter()
                .filter(|s| s.starts_with(|ch: char| ch.is_ascii_digit()))
                .cloned()
                .collect();
            let generic = if c.base_sql.starts_with("time") && !c.base_sql.starts_with("timestamp")
            {
                ["00:00", "12:00", "23:59"]
            } else {
                ["2024-01-01", "2024-06-01", "2025-01-01"]
            };
            out.extend(generic.map(String::from));
            out
        }
        _ => {
            let mut out = strings.to_vec();
            out.extend(["a", "seed"].map(String::from));
            out
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|v| seen.insert(v.clone()));
    out.truncate(PER_COLUMN);
    out
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// The string literals (`'a''b'` → `a'b`) and the bare numbers of an expression, skipping
/// quoted identifiers.
fn literals(expr: &str) -> (Vec<String>, Vec<f64>) {
    let (mut strings, mut numbers) = (Vec::new(), Vec::new());
    let mut chars = expr.chars().peekable();
    let mut prev = ' ';
    while let Some(ch) = chars.next() {
        if ch == '\'' || ch == '"' {
            let mut s = String::new();
            while let Some(c) = chars.next() {
                if c == ch && chars.peek() == Some(&ch) {
                    chars.next();
                    s.push(c);
                } else if c == ch {
                    break;
                } else {
                    s.push(c);
                }
            }
            if ch == '\'' {
                strings.push(s);
            }
        } else if ch.is_ascii_digit() && !(prev.is_alphanumeric() || prev == '_') {
            let mut s = String::from(ch);
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit() || **c == '.') {
                s.push(c);
                chars.next();
            }
            numbers.extend(
                s.parse::<f64>()
                    .ok()
                    .map(|x| if prev == '-' { -x } else { x }),
            );
        }
        prev = ch;
    }
    (strings, numbers)
}

/// Rows a partition of `t` accepts: each range partition's lower bound, each listed value.
pub fn for_partition(t: &Table) -> Combos {
    let key = &t.partition_key;
    if key.is_empty() || key.iter().any(String::is_empty) {
        return None;
    }
    let mut rows = Vec::new();
    for b in &t.partition_bounds {
        if let Some(rest) = b.strip_prefix("FOR VALUES FROM (") {
            let items = split_items(rest);
            let bounded = items.iter().all(|i| !i.ends_with("VALUE"));
            if items.len() == key.len() && bounded {
                rows.push(items.iter().map(|i| unquote(i)).collect());
            }
        } else if let Some(rest) = b.strip_prefix("FOR VALUES IN (")
            && key.len() == 1
        {
            rows.extend(split_items(rest).iter().map(|i| vec![unquote(i)]));
        }
    }
    (!rows.is_empty()).then(|| (key.clone(), rows))
}

/// The comma-separated items of `rest` up to its closing parenthesis (quotes respected).
fn split_items(rest: &str) -> Vec<String> {
    let (mut items, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for ch in rest.chars() {
        match ch {
            '\'' => quoted = !quoted,
            ',' | ')' if !quoted => {
                items.push(cur.trim().to_string());
                cur.clear();
                if ch == ')' {
                    return items;
                }
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    items
}

/// `'it''s'` → `it's`; `NULL` → `None`; a number as it is.
fn unquote(item: &str) -> Option<String> {
    if item.eq_ignore_ascii_case("NULL") {
        return None;
    }
    let inner = item.strip_prefix('\'').and_then(|s| s.strip_suffix('\''));
    Some(inner.map_or(item.to_string(), |s| s.replace("''", "'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_read_and_identifiers_skipped() {
        let (s, n) = literals(
            "((status = ANY (ARRAY['draft'::text, 'it''s'::text])) AND (\"qty2\" >= 10) AND (x > (-2.5)))",
        );
        assert_eq!(s, vec!["draft", "it's"]);
        assert_eq!(n, vec![10.0, -2.5]);
    }

    #[test]
    fn partition_bounds_give_lower_bounds_and_listed_values() {
        let mut t = Table::empty(1, "t".into());
        t.partition_key = vec!["d".into()];
        t.partition_bounds = vec![
            "FOR VALUES FROM ('2023-01-01') TO ('2023-02-01')".into(),
            "FOR VALUES FROM (MINVALUE) TO ('2020-01-01')".into(),
            "FOR VALUES IN ('x', 'it''s', NULL)".into(),
            "DEFAULT".into(),
        ];
        let (cols, rows) = for_partition(&t).unwrap();
        assert_eq!(cols, vec!["d"]);
        let want: Vec<Vec<Option<String>>> = vec![
            vec![Some("2023-01-01".into())],
            vec![Some("x".into())],
            vec![Some("it's".into())],
            vec![None],
        ];
        assert_eq!(rows, want);
    }
}
