//! Synthetic values by type: a SQL expression of the column's type for row number `n` (itself an
//! SQL expression: 1, 2, 3… or, for the columns of a unique index, numbers past the table's
//! existing keys). Values are deterministic in `n`, so a NOT NULL self-reference can repeat its
//! own key's expression.

use super::catalog::Column;
use crate::sql::quote::quote_literal;

/// A value of `c`'s type for row `n`, or `None` when there is no generator for the type.
pub fn value(c: &Column, n: &str) -> Option<String> {
    let t = c.type_sql.as_str();
    let b = c.base_sql.as_str();
    let cast = |e: String| Some(format!("({e})::{t}"));
    if c.typtype == "e" {
        let range = format!("enum_range(NULL::{b})");
        return cast(format!(
            "({range})[1 + (({n} - 1) % array_length({range}, 1))::int]"
        ));
    }
    match c.category.as_str() {
        "A" => Some(format!("'{{}}'::{t}")),
        "B" => cast(format!("{n} % 2 = 0")),
        "N" if b == "money" => cast(format!("({n})::numeric")),
        "N" => cast(n.to_string()),
        "D" if b.starts_with("time") && !b.starts_with("timestamp") => {
            cast(format!("'12:00'::time + {n} * interval '1 minute'"))
        }
        // Minutes by column position: createdAt < updatedAt, startsAt < endsAt.
        "D" => cast(format!(
            "timestamp '2024-01-01' + {n} * interval '1 day' + {} * interval '1 minute'",
            c.attnum
        )),
        "T" => cast(format!("{n} * interval '1 day'")),
        "S" => cast(text(c, n)),
        "U" => user_defined(c, n).and_then(cast),
        "I" => cast(format!(
            "'10.0.' || ({n} / 256 % 256) || '.' || ({n} % 256)"
        )),
        "V" => cast(format!("({n})::int4::bit(32)")),
        "G" if b == "point" => cast(format!("point({n}, {n})")),
        "R" => Some(format!("'empty'::{t}")),
        _ => None,
    }
}

/// `'<column>_' || n`, cut to a `varchar(n)` / `char(n)` length from the right (where `n` is).
fn text(c: &Column, n: &str) -> String {
    let v = format!("{} || {n}", quote_literal(&format!("{}_", c.name)));
    match c.typmod_len {
        Some(len) if c.base_sql.starts_with("character") => format!("right({v}, {len})"),
        _ => v,
    }
}

/// The user-defined category: uuid, json, bytea, text search, xml, macaddr.
fn user_defined(c: &Column, n: &str) -> Option<String> {
    let seed = quote_literal(&format!("{}:", c.name));
    let e = match c.base_sql.as_str() {
        "uuid" => format!("md5({seed} || {n})::uuid"),
        "json" | "jsonb" => format!("jsonb_build_object('seed', {n})"),
        "bytea" => format!("convert_to({seed} || {n}, 'UTF8')"),
        "tsvector" => format!("to_tsvector('simple', 'seed ' || {n})"),
        "tsquery" => "'seed'::tsquery".to_string(),
        "xml" => format!("('<seed n=\"' || {n} || '\"/>')::xml"),
        "macaddr" | "macaddr8" => {
            format!(
                "('08:00:2b:00:' || lpad(to_hex({n} / 256 % 256), 2, '0') || ':' || lpad(to_hex({n} % 256), 2, '0'))::macaddr"
            )
        }
        _ => return None,
    };
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, type_sql: &str, typtype: &str, category: &str) -> Column {
        Column {
            name: name.into(),
            attnum: 3,
            type_sql: type_sql.into(),
            base_sql: type_sql.into(),
            typtype: typtype.into(),
            category: category.into(),
            not_null: true,
            has_default: false,
            identity: false,
            generated: false,
            typmod_len: None,
        }
    }

    #[test]
    fn names_are_quoted_as_literals() {
        let c = col("it's", "text", "b", "S");
        assert_eq!(value(&c, "g.i").unwrap(), "('it''s_' || g.i)::text");
    }

    #[test]
    fn varchar_is_cut_to_its_length() {
        let mut c = col("code", "character varying(4)", "b", "S");
        c.typmod_len = Some(4);
        assert_eq!(
            value(&c, "g.i").unwrap(),
            "(right('code_' || g.i, 4))::character varying(4)"
        );
    }

    #[test]
    fn enums_take_real_labels_and_unknown_types_have_none() {
        let e = value(&col("role", "\"Role\"", "e", "E"), "g.i").unwrap();
        assert!(e.contains("enum_range(NULL::\"Role\")"), "{e}");
        assert_eq!(value(&col("c", "my_composite", "c", "C"), "g.i"), None);
    }
}
