//! Comparing two catalogs: one [`Change`] per differing object, sorted by object kind then name.
//!
//! - An object on one side only is one change, whatever it contains: a table that exists only
//!   in one catalog is a single `table` change whose text is the whole table (columns,
//!   constraints, indexes, triggers, policies), not one change per column.
//! - For an object on both sides, its own definition, each nested object, its comment and its
//!   owner/grants are compared separately, so a new comment is a `comment` change and a new
//!   `GRANT` a `grant` change, not a changed table.
//! - **Column order.** Columns are matched by name, and a column's position is not part of its
//!   definition: `ALTER TABLE … ADD COLUMN` always appends, so a history that adds a column
//!   later legitimately ends with a different physical order than a from-scratch build, and
//!   Prisma's own drift check ignores order too. But order is visible to `SELECT *`, `COPY`
//!   without a column list and `INSERT … VALUES` without one, so it is not silently dropped:
//!   when the columns present on both sides appear in a different relative order, the table
//!   gets one `Changed` change reading `column order: a, b, c` on each side, which
//!   [`Change::is_minor`] flags so a check can report it quietly. A column that exists on one
//!   side only does not count as an order difference.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::Serialize;

use super::catalog::*;
use crate::sql::quote::{quote_ident, quote_literal};

/// The kind of object a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    Schema,
    Table,
    Column,
    Constraint,
    Index,
    Sequence,
    Enum,
    Domain,
    CompositeType,
    View,
    MaterializedView,
    Function,
    Trigger,
    Policy,
    Extension,
    Comment,
    Grant,
}

impl ObjectKind {
    /// Every kind, in report order.
    pub const ALL: [ObjectKind; 17] = [
        ObjectKind::Schema,
        ObjectKind::Table,
        ObjectKind::Column,
        ObjectKind::Constraint,
        ObjectKind::Index,
        ObjectKind::Sequence,
        ObjectKind::Enum,
        ObjectKind::Domain,
        ObjectKind::CompositeType,
        ObjectKind::View,
        ObjectKind::MaterializedView,
        ObjectKind::Function,
        ObjectKind::Trigger,
        ObjectKind::Policy,
        ObjectKind::Extension,
        ObjectKind::Comment,
        ObjectKind::Grant,
    ];

    /// `index`, `composite type`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Schema => "schema",
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Constraint => "constraint",
            ObjectKind::Index => "index",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Enum => "enum",
            ObjectKind::Domain => "domain",
            ObjectKind::CompositeType => "composite type",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Function => "function",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Policy => "policy",
            ObjectKind::Extension => "extension",
            ObjectKind::Comment => "comment",
            ObjectKind::Grant => "grant",
        }
    }

    /// `indexes`, `policies`, …
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::Schema => "schemas",
            ObjectKind::Table => "tables",
            ObjectKind::Column => "columns",
            ObjectKind::Constraint => "constraints",
            ObjectKind::Index => "indexes",
            ObjectKind::Sequence => "sequences",
            ObjectKind::Enum => "enums",
            ObjectKind::Domain => "domains",
            ObjectKind::CompositeType => "composite types",
            ObjectKind::View => "views",
            ObjectKind::MaterializedView => "materialized views",
            ObjectKind::Function => "functions",
            ObjectKind::Trigger => "triggers",
            ObjectKind::Policy => "policies",
            ObjectKind::Extension => "extensions",
            ObjectKind::Comment => "comments",
            ObjectKind::Grant => "grants",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Added: only in the right catalog; Removed: only in the left; Changed: in both, different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        })
    }
}

/// One difference between two catalogs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub object: ObjectKind,
    /// Qualified, human-readable name: `public."User"` (table), `public."User"."email"`
    /// (column; constraints, triggers and policies likewise under their table),
    /// `public."User_email_key"` (index), `public."f"(integer)` (function). For `comment` and
    /// `grant` changes the name starts with the kind of object they are on:
    /// `column public."User"."email"`, `table public."User"`, `schema public`.
    pub name: String,
    pub kind: ChangeKind,
    /// The definition on the left (e.g. scratch), as readable SQL-ish text.
    pub left: Option<String>,
    /// The definition on the right (e.g. incremental).
    pub right: Option<String>,
}

/// Prefix of the column-order aspect of a table change.
const COLUMN_ORDER: &str = "column order: ";

impl Change {
    /// True for differences that cannot change what an application reading and writing named
    /// columns sees: a comment, or only the column order of a table.
    pub fn is_minor(&self) -> bool {
        match self.object {
            ObjectKind::Comment => true,
            ObjectKind::Table => [&self.left, &self.right].iter().all(|side| {
                side.as_deref()
                    .is_some_and(|t| t.split("; ").all(|part| part.starts_with(COLUMN_ORDER)))
            }),
            _ => false,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.object, self.name, self.kind)
    }
}

/// "2 columns, 1 index differ"; "no differences" when empty.
pub fn summary(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no differences".into();
    }
    let mut counts: BTreeMap<ObjectKind, usize> = BTreeMap::new();
    for c in changes {
        *counts.entry(c.object).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(kind, n)| {
            format!(
                "{n} {}",
                if *n == 1 {
                    kind.as_str()
                } else {
                    kind.plural()
                }
            )
        })
        .collect();
    let verb = if changes.len() == 1 {
        "differs"
    } else {
        "differ"
    };
    format!("{} {verb}", parts.join(", "))
}

/// What changes turn `left` into `right`, sorted by object kind, then name.
pub fn diff(left: &Catalog, right: &Catalog) -> Vec<Change> {
    let mut out = Out::default();

    for (key, l, r) in pairs(&left.schemas, &right.schemas) {
        match (l, r) {
            (Some(l), Some(r)) => {
                out.comment(&format!("schema {key}"), &l.comment, &r.comment);
                out.access(&format!("schema {key}"), &l.access, &r.access);
            }
            _ => out.push(
                ObjectKind::Schema,
                key,
                l.map(|_| format!("SCHEMA {key}")),
                r.map(|_| format!("SCHEMA {key}")),
            ),
        }
    }

    for (key, l, r) in pairs(&left.extensions, &right.extensions) {
        out.push(
            ObjectKind::Extension,
            key,
            l.map(Extension::definition),
            r.map(Extension::definition),
        );
    }

    for (key, l, r) in pairs(&left.tables, &right.tables) {
        match (l, r) {
            (Some(l), Some(r)) => out.table(key, l, r),
            _ => out.push(
                ObjectKind::Table,
                key,
                l.map(|t| t.render(key)),
                r.map(|t| t.render(key)),
            ),
        }
    }

    for (key, l, r) in pairs(&left.views, &right.views) {
        let materialized = l.or(r).is_some_and(|v| v.materialized);
        let object = if materialized {
            ObjectKind::MaterializedView
        } else {
            ObjectKind::View
        };
        match (l, r) {
            (Some(l), Some(r)) => {
                let (lt, rt) = if l.materialized == r.materialized {
                    (l.definition(), r.definition())
                } else {
                    (view_with_kind(l), view_with_kind(r))
                };
                out.push(object, key, Some(lt), Some(rt));
                out.comment(&format!("{object} {key}"), &l.comment, &r.comment);
                out.access(&format!("{object} {key}"), &l.access, &r.access);
                out.columns_extras(key, &view_columns(l), &view_columns(r));
                out.indexes(&l.indexes, &r.indexes);
                out.triggers(key, &l.triggers, &r.triggers);
            }
            _ => out.push(
                object,
                key,
                l.map(View::definition),
                r.map(View::definition),
            ),
        }
    }

    out.simple(
        ObjectKind::Sequence,
        &left.sequences,
        &right.sequences,
        Sequence::definition,
        |s| (&s.comment, &s.access),
    );
    out.simple(
        ObjectKind::Enum,
        &left.enums,
        &right.enums,
        EnumType::definition,
        |e| (&e.comment, &e.access),
    );
    out.simple(
        ObjectKind::Domain,
        &left.domains,
        &right.domains,
        Domain::definition,
        |d| (&d.comment, &d.access),
    );
    out.simple(
        ObjectKind::CompositeType,
        &left.composite_types,
        &right.composite_types,
        CompositeType::definition,
        |t| (&t.comment, &t.access),
    );
    out.simple(
        ObjectKind::Function,
        &left.functions,
        &right.functions,
        |f| f.definition.clone(),
        |f| (&f.comment, &f.access),
    );

    for (key, l, r) in pairs(&left.default_privileges, &right.default_privileges) {
        out.push(
            ObjectKind::Grant,
            &format!("default privileges {key}"),
            l.map(|g| grant_list(g)),
            r.map(|g| grant_list(g)),
        );
    }

    let mut changes = out.0;
    changes.sort_by(|a, b| (a.object, &a.name).cmp(&(b.object, &b.name)));
    changes
}

#[derive(Default)]
struct Out(Vec<Change>);

impl Out {
    /// Push a change unless both sides are equal (or both absent).
    fn push(
        &mut self,
        object: ObjectKind,
        name: &str,
        left: Option<String>,
        right: Option<String>,
    ) {
        let kind = match (&left, &right) {
            (None, None) => return,
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (Some(l), Some(r)) if l == r => return,
            _ => ChangeKind::Changed,
        };
        self.0.push(Change {
            object,
            name: name.to_string(),
            kind,
            left,
            right,
        });
    }

    /// A comment on `target` (`table public."User"`).
    fn comment(&mut self, target: &str, left: &Option<String>, right: &Option<String>) {
        self.push(
            ObjectKind::Comment,
            target,
            left.as_deref().map(quote_literal),
            right.as_deref().map(quote_literal),
        );
    }

    /// Owner and grants of `target`.
    fn access(&mut self, target: &str, left: &Access, right: &Access) {
        if left != right {
            self.push(
                ObjectKind::Grant,
                target,
                Some(left.render()),
                Some(right.render()),
            );
        }
    }

    /// Column-level grants of `target`.
    fn column_grants(&mut self, target: &str, left: &[String], right: &[String]) {
        let side = |g: &[String]| (!g.is_empty()).then(|| grant_list(g));
        self.push(ObjectKind::Grant, target, side(left), side(right));
    }

    /// Objects with a definition, a comment and an owner/ACL.
    fn simple<T>(
        &mut self,
        object: ObjectKind,
        left: &BTreeMap<String, T>,
        right: &BTreeMap<String, T>,
        definition: impl Fn(&T) -> String,
        extras: impl Fn(&T) -> (&Option<String>, &Access),
    ) {
        for (key, l, r) in pairs(left, right) {
            self.push(object, key, l.map(&definition), r.map(&definition));
            if let (Some(l), Some(r)) = (l, r) {
                let ((lc, la), (rc, ra)) = (extras(l), extras(r));
                self.comment(&format!("{object} {key}"), lc, rc);
                self.access(&format!("{object} {key}"), la, ra);
            }
        }
    }

    /// A table present on both sides.
    fn table(&mut self, key: &str, l: &Table, r: &Table) {
        // Table-level properties, column order included, as one change.
        let mut left_aspects = Vec::new();
        let mut right_aspects = Vec::new();
        for ((name, lv), (_, rv)) in l.aspects().into_iter().zip(r.aspects()) {
            if lv != rv {
                left_aspects.push(format!("{name}: {lv}"));
                right_aspects.push(format!("{name}: {rv}"));
            }
        }
        if column_order_differs(&l.columns, &r.columns) {
            let order = |t: &Table| {
                let names: Vec<String> = t.columns.iter().map(|c| quote_ident(&c.name)).collect();
                format!("{COLUMN_ORDER}{}", names.join(", "))
            };
            left_aspects.push(order(l));
            right_aspects.push(order(r));
        }
        if !left_aspects.is_empty() {
            self.push(
                ObjectKind::Table,
                key,
                Some(left_aspects.join("; ")),
                Some(right_aspects.join("; ")),
            );
        }
        self.comment(&format!("table {key}"), &l.comment, &r.comment);
        self.access(&format!("table {key}"), &l.access, &r.access);

        let lcols: BTreeMap<&str, &Column> =
            l.columns.iter().map(|c| (c.name.as_str(), c)).collect();
        let rcols: BTreeMap<&str, &Column> =
            r.columns.iter().map(|c| (c.name.as_str(), c)).collect();
        let names: BTreeSet<&str> = lcols.keys().chain(rcols.keys()).copied().collect();
        for name in names {
            let (lc, rc) = (lcols.get(name), rcols.get(name));
            let col = format!("{key}.{}", quote_ident(name));
            self.push(
                ObjectKind::Column,
                &col,
                lc.map(|c| c.definition()),
                rc.map(|c| c.definition()),
            );
            if let (Some(lc), Some(rc)) = (lc, rc) {
                self.comment(&format!("column {col}"), &lc.comment, &rc.comment);
                self.column_grants(&format!("column {col}"), &lc.grants, &rc.grants);
            }
        }

        for (name, lc, rc) in pairs(&l.constraints, &r.constraints) {
            let full = format!("{key}.{name}");
            self.push(
                ObjectKind::Constraint,
                &full,
                lc.map(|c| c.definition.clone()),
                rc.map(|c| c.definition.clone()),
            );
            if let (Some(lc), Some(rc)) = (lc, rc) {
                self.comment(&format!("constraint {full}"), &lc.comment, &rc.comment);
            }
        }
        self.indexes(&l.indexes, &r.indexes);
        self.triggers(key, &l.triggers, &r.triggers);
        for (name, lp, rp) in pairs(&l.policies, &r.policies) {
            let full = format!("{key}.{name}");
            self.push(
                ObjectKind::Policy,
                &full,
                lp.map(Policy::definition),
                rp.map(Policy::definition),
            );
            if let (Some(lp), Some(rp)) = (lp, rp) {
                self.comment(&format!("policy {full}"), &lp.comment, &rp.comment);
            }
        }
    }

    fn indexes(&mut self, left: &BTreeMap<String, Index>, right: &BTreeMap<String, Index>) {
        for (key, l, r) in pairs(left, right) {
            self.push(
                ObjectKind::Index,
                key,
                l.map(Index::definition),
                r.map(Index::definition),
            );
            if let (Some(l), Some(r)) = (l, r) {
                self.comment(&format!("index {key}"), &l.comment, &r.comment);
            }
        }
    }

    fn triggers(
        &mut self,
        rel: &str,
        left: &BTreeMap<String, Trigger>,
        right: &BTreeMap<String, Trigger>,
    ) {
        for (name, l, r) in pairs(left, right) {
            let full = format!("{rel}.{name}");
            self.push(
                ObjectKind::Trigger,
                &full,
                l.map(Trigger::definition),
                r.map(Trigger::definition),
            );
            if let (Some(l), Some(r)) = (l, r) {
                self.comment(&format!("trigger {full}"), &l.comment, &r.comment);
            }
        }
    }

    /// Comments and grants of view columns (matched by name).
    fn columns_extras(&mut self, rel: &str, left: &[&ViewColumn], right: &[&ViewColumn]) {
        let lmap: BTreeMap<&str, &ViewColumn> =
            left.iter().map(|c| (c.name.as_str(), *c)).collect();
        for rc in right {
            if let Some(lc) = lmap.get(rc.name.as_str()) {
                let col = format!("column {rel}.{}", quote_ident(&rc.name));
                self.comment(&col, &lc.comment, &rc.comment);
                self.column_grants(&col, &lc.grants, &rc.grants);
            }
        }
    }
}

fn view_columns(v: &View) -> Vec<&ViewColumn> {
    v.columns.iter().collect()
}

fn view_with_kind(v: &View) -> String {
    let kind = if v.materialized {
        "MATERIALIZED VIEW"
    } else {
        "VIEW"
    };
    format!("{kind} {}", v.definition())
}

fn grant_list(g: &[String]) -> String {
    if g.is_empty() {
        "no privileges".into()
    } else {
        g.join(", ")
    }
}

/// Whether the columns present on both sides appear in a different relative order.
fn column_order_differs(left: &[Column], right: &[Column]) -> bool {
    let lnames: HashSet<&str> = left.iter().map(|c| c.name.as_str()).collect();
    let rnames: HashSet<&str> = right.iter().map(|c| c.name.as_str()).collect();
    let l = left
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| rnames.contains(n));
    let r = right
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| lnames.contains(n));
    !l.eq(r)
}

/// Every key of either map, in order, with the value on each side.
fn pairs<'a, T>(
    left: &'a BTreeMap<String, T>,
    right: &'a BTreeMap<String, T>,
) -> impl Iterator<Item = (&'a str, Option<&'a T>, Option<&'a T>)> {
    let keys: BTreeSet<&'a String> = left.keys().chain(right.keys()).collect();
    keys.into_iter()
        .map(move |k| (k.as_str(), left.get(k), right.get(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            ..Column::default()
        }
    }

    fn table(cols: Vec<Column>) -> Table {
        Table {
            schema: "public".into(),
            name: "User".into(),
            columns: cols,
            replica_identity: "default".into(),
            ..Table::default()
        }
    }

    fn catalog(t: Table) -> Catalog {
        let mut c = Catalog::default();
        c.tables.insert("public.\"User\"".into(), t);
        c
    }

    #[test]
    fn equal_catalogs_have_no_changes() {
        let a = catalog(table(vec![col("id", "integer")]));
        assert!(diff(&a, &a.clone()).is_empty());
        assert_eq!(summary(&[]), "no differences");
    }

    #[test]
    fn a_table_on_one_side_is_one_change() {
        let a = Catalog::default();
        let b = catalog(table(vec![col("id", "integer"), col("email", "text")]));
        let changes = diff(&a, &b);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].kind, ChangeKind::Added);
        assert_eq!(changes[0].object, ObjectKind::Table);
        let text = changes[0].right.as_deref().unwrap();
        assert!(
            text.starts_with("CREATE TABLE public.\"User\" (\n    \"id\" integer,"),
            "{text}"
        );
    }

    #[test]
    fn column_order_is_one_minor_table_change_and_extra_columns_are_not_order() {
        let a = catalog(table(vec![
            col("id", "integer"),
            col("a", "text"),
            col("b", "text"),
        ]));
        let b = catalog(table(vec![
            col("id", "integer"),
            col("b", "text"),
            col("a", "text"),
        ]));
        let changes = diff(&a, &b);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].object, ObjectKind::Table);
        assert_eq!(
            changes[0].left.as_deref(),
            Some("column order: \"id\", \"a\", \"b\"")
        );
        assert!(changes[0].is_minor());

        let c = catalog(table(vec![
            col("id", "integer"),
            col("x", "int"),
            col("a", "text"),
            col("b", "text"),
        ]));
        let changes = diff(&a, &c);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].object, ObjectKind::Column);
        assert_eq!(changes[0].name, "public.\"User\".\"x\"");
        assert!(!changes[0].is_minor());
    }

    #[test]
    fn summary_counts_per_kind() {
        let a = catalog(table(vec![col("id", "integer"), col("a", "text")]));
        let mut b = catalog(table(vec![col("id", "bigint"), col("a", "varchar")]));
        b.tables.get_mut("public.\"User\"").unwrap().indexes.insert(
            "public.\"i\"".into(),
            Index {
                indexdef: "CREATE INDEX i ON public.\"User\" USING btree (a)".into(),
                valid: true,
                comment: None,
            },
        );
        let changes = diff(&a, &b);
        assert_eq!(summary(&changes), "2 columns, 1 index differ");
        assert_eq!(summary(&changes[2..]), "1 index differs");
    }
}
