//! The statements that fill one table: an `INSERT … SELECT … FROM generate_series` writing
//! [`Attempt::rows`] rows, and the `UPDATE` pointing the keys written NULL (or as placeholders)
//! at parent rows once every table is filled.
//!
//! Keys never collide with rows the history left (an admin user): the columns of unique indexes
//! take numbers past the table's row count and past the largest existing value of its numeric
//! key columns (`o.off`); each foreign key takes an existing parent row, one not referenced yet
//! when the key is unique (a one-to-one relation). Identity columns in a key are written
//! (`OVERRIDING SYSTEM VALUE`) and their sequences advanced afterwards; generated columns never.

use std::collections::BTreeMap;

use super::catalog::{Column, ForeignKey, Table};
use super::order::Link;
use super::values::value;
use crate::sql::quote::{quote_ident, quote_literal};

/// What one try at filling a table writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Shifts keys by 1,000 and parent rows by one (after a duplicate key).
    pub salt: i64,
    pub rows: i64,
    /// Values for columns a CHECK or a partition bound constrains, as text cast to the column's
    /// type; row `i` takes the `(i - 1) % len`th (`None`: NULL).
    pub overrides: BTreeMap<String, Vec<Option<String>>>,
}

impl Attempt {
    pub fn new(rows: i64) -> Attempt {
        Attempt {
            salt: 0,
            rows,
            overrides: BTreeMap::new(),
        }
    }
}

/// Keys of the rows this seeding wrote, by (table oid, key columns): per row, the values as
/// text. A foreign key to those columns cycles through them (no subquery to plan or run).
pub type Fresh = BTreeMap<(i64, Vec<String>), Vec<Vec<Option<String>>>>;

/// What the statements for one table are built from.
pub struct Target<'a> {
    pub t: &'a Table,
    /// How each of `t`'s foreign keys is satisfied.
    pub links: &'a [Link],
    pub fresh: &'a Fresh,
    /// The column sets of `t` whose written values are needed back (other tables' foreign keys
    /// reference them, or a sequence is behind them): returned by the INSERT.
    pub referenced: &'a [Vec<String>],
    /// Returned first in every row, to tell the tables of a batch apart.
    pub tag: usize,
}

/// Where a row written is: `ctid@tableoid` (a partitioned table's partitions share ctids).
const ROW_ID: &str = "ctid::text || '@' || tableoid::oid::text";

/// The row number of key columns: past every existing key.
const KEY_N: &str = "(g.i + o.off)";

/// The INSERT for `x.t`, returning for each row `x.tag`, its [`ROW_ID`] and then, per set of
/// `x.referenced`, the row's values of those columns as a text array.
/// `Err`: why the table cannot be filled (a NOT NULL column of a type with no generator).
pub fn insert_sql(x: &Target, a: &Attempt) -> Result<String, String> {
    let t = x.t;
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    let mut joins = Vec::new();
    let mut overriding = false;
    for c in t.columns.iter().filter(|c| !c.generated) {
        let Some(v) = column_value(x, a, c, &mut joins)? else {
            continue;
        };
        overriding |= c.identity;
        cols.push(quote_ident(&c.name));
        vals.push(v);
    }
    let uses_off = vals.iter().any(|v| v.contains("o.off"));
    let mut from = format!("generate_series(1, {}) AS g(i)", a.rows);
    if uses_off {
        from.push_str(&format!(" CROSS JOIN ({}) AS o", offset_sql(t, a.salt)));
    }
    joins.sort();
    joins.dedup();
    for k in joins {
        let picked = pick(t, &t.fks[k], "g.i", a.salt, "q.*");
        from.push_str(&format!(" LEFT JOIN LATERAL ({picked}) AS f{k} ON true"));
    }
    let target = if cols.is_empty() {
        t.qualified.clone()
    } else {
        format!("{} ({})", t.qualified, cols.join(", "))
    };
    let mut returning = vec![format!("{}::int8", x.tag), ROW_ID.to_string()];
    for set in x.referenced {
        let texts: Vec<String> = set
            .iter()
            .map(|c| format!("{}::text", quote_ident(c)))
            .collect();
        returning.push(format!("ARRAY[{}]::text[]", texts.join(", ")));
    }
    Ok(format!(
        "INSERT INTO {target}{} SELECT {} FROM {from} RETURNING {}",
        if overriding {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        vals.join(", "),
        returning.join(", ")
    ))
}

/// The expression written to `c`, `None` to leave it to its default. Parent rows picked by a
/// foreign key are joined in as `f<k>` (their indexes pushed on `joins`) unless this seeding
/// wrote the parent's rows ([`Fresh`]).
fn column_value(
    x: &Target,
    a: &Attempt,
    c: &Column,
    joins: &mut Vec<usize>,
) -> Result<Option<String>, String> {
    let t = x.t;
    let key = t.is_key(&c.name);
    if let Some(vals) = a.overrides.get(&c.name) {
        return Ok(Some(cycle(vals, &c.type_sql, "g.i", 0)));
    }
    let fk = t.fks.iter().enumerate().find_map(|(k, fk)| {
        let j = fk.cols.iter().position(|x| *x == c.name)?;
        Some((k, fk, j))
    });
    if let Some((k, fk, j)) = fk {
        let v = match x.links.get(k).copied().unwrap_or(Link::Parent) {
            Link::Parent => Some(fresh_key(x, fk, j, c, "g.i", a.salt).unwrap_or_else(|| {
                joins.push(k);
                format!("f{k}.{}", quote_ident(&fk.parent_cols[j]))
            })),
            Link::Null => Some("NULL".to_string()),
            Link::SameRow => t
                .column(&fk.parent_cols[j])
                .and_then(|p| value(p, KEY_N))
                .map(|v| format!("({v})::{}", c.type_sql)),
            Link::Deferred => value(c, "g.i"),
        };
        return v.map(Some).ok_or_else(|| no_generator(c));
    }
    if (c.identity || c.has_default) && !key {
        return Ok(None);
    }
    match value(c, if key { KEY_N } else { "g.i" }) {
        Some(v) => Ok(Some(v)),
        None if c.not_null && !c.has_default => Err(no_generator(c)),
        None => Ok(None),
    }
}

/// Column `j` of foreign key `fk` (`c`) from the parent rows this seeding wrote, row `rownum`
/// taking the `(rownum - 1 + salt) % n`th; `None` when it wrote none.
fn fresh_key(
    x: &Target,
    fk: &ForeignKey,
    j: usize,
    c: &Column,
    rownum: &str,
    salt: i64,
) -> Option<String> {
    let rows = x.fresh.get(&(fk.parent, fk.parent_cols.clone()))?;
    if rows.is_empty() {
        return None;
    }
    let vals: Vec<Option<String>> = rows.iter().map(|r| r.get(j).cloned().flatten()).collect();
    Some(cycle(&vals, &c.type_sql, rownum, salt))
}

fn no_generator(c: &Column) -> String {
    format!(
        "no value generator for type {} (column {}, NOT NULL without a default)",
        c.type_sql, c.name
    )
}

/// `vals` cycled over the rows (row `rownum` takes the `(rownum - 1 + salt) % len`th), cast to
/// `type_sql`.
fn cycle(vals: &[Option<String>], type_sql: &str, rownum: &str, salt: i64) -> String {
    let lits: Vec<String> = vals
        .iter()
        .map(|v| v.as_deref().map_or("NULL".to_string(), quote_literal))
        .collect();
    format!(
        "((ARRAY[{}]::text[])[1 + (({rownum} - 1 + {salt}) % {})::int])::{type_sql}",
        lits.join(", "),
        vals.len().max(1)
    )
}

/// `o.off`: past the row count and the largest numeric key of `t`, shifted by `salt` thousands.
fn offset_sql(t: &Table, salt: i64) -> String {
    let mut terms = vec!["count(*)::numeric".to_string()];
    for c in &t.columns {
        if c.category == "N" && t.is_key(&c.name) {
            terms.push(format!("max({})::numeric", quote_ident(&c.name)));
        }
    }
    format!(
        "SELECT (floor(GREATEST({})) + {})::int8 AS off FROM {}",
        terms.join(", "),
        salt * 1000,
        t.qualified
    )
}

/// A query giving, for row `rownum`, one row of `fk`'s parent (`q`, with the parent's key
/// columns): existing ones in turn, shifted by `salt`; when `fk`'s columns are unique in `t`,
/// only parent rows no row of `t` references yet.
pub fn pick(t: &Table, fk: &ForeignKey, rownum: &str, salt: i64, select: &str) -> String {
    let keys: Vec<String> = fk
        .parent_cols
        .iter()
        .map(|c| format!("p.{}", quote_ident(c)))
        .collect();
    let mut filter: Vec<String> = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
    if t.unique_over(&fk.cols) {
        let same: Vec<String> = fk
            .cols
            .iter()
            .zip(&keys)
            .map(|(c, k)| format!("x.{} = {k}", quote_ident(c)))
            .collect();
        filter.push(format!(
            "NOT EXISTS (SELECT 1 FROM {} x WHERE {})",
            t.qualified,
            same.join(" AND ")
        ));
    }
    format!(
        "SELECT {select} FROM (SELECT {}, row_number() OVER (ORDER BY {}) AS cigate_rn, count(*) OVER () AS cigate_n \
         FROM {} p WHERE {}) q WHERE q.cigate_rn = 1 + (({rownum} - 1 + {salt}) % q.cigate_n)",
        keys.join(", "),
        keys.join(", "),
        fk.parent_qualified,
        filter.join(" AND ")
    )
}

/// The UPDATE pointing the keys `x.links` left for later at parent rows, on the rows `ids`
/// ([`ROW_ID`]s); `None` when nothing was left for later.
pub fn fixup_sql(x: &Target, ids: &[String]) -> Option<String> {
    let t = x.t;
    let sets: Vec<String> = t
        .fks
        .iter()
        .zip(x.links)
        .filter(|(_, l)| l.fixed_later())
        .map(|(fk, _)| {
            let cols: Vec<String> = fk.cols.iter().map(|c| quote_ident(c)).collect();
            let fresh: Option<Vec<String>> = fk
                .cols
                .iter()
                .enumerate()
                .map(|(j, c)| fresh_key(x, fk, j, t.column(c)?, "s.i", 0))
                .collect();
            let source = fresh.map_or_else(
                || {
                    let keys: Vec<String> = fk
                        .parent_cols
                        .iter()
                        .map(|c| format!("q.{}", quote_ident(c)))
                        .collect();
                    format!("({})", pick(t, fk, "s.i", 0, &keys.join(", ")))
                },
                |vals| format!("ROW({})", vals.join(", ")),
            );
            format!("({}) = {source}", cols.join(", "))
        })
        .collect();
    if sets.is_empty() {
        return None;
    }
    let ids: Vec<String> = ids.iter().map(|id| quote_literal(id)).collect();
    Some(format!(
        "UPDATE {} AS c SET {} FROM unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS s(rid, i) \
         WHERE c.ctid = split_part(s.rid, '@', 1)::tid AND c.tableoid = split_part(s.rid, '@', 2)::oid",
        t.qualified,
        sets.join(", "),
        ids.join(", ")
    ))
}

/// The deferrable foreign keys `links` writes placeholders for.
pub fn deferred(t: &Table, links: &[Link]) -> Vec<String> {
    t.fks
        .iter()
        .zip(links)
        .filter(|(_, l)| **l == Link::Deferred)
        .map(|(fk, _)| fk.name.clone())
        .collect()
}
