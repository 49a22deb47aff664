//! The values a [`Catalog`] is made of, and how each renders as readable SQL-ish text.
//!
//! Every map is keyed by the object's display name: the schema as PostgreSQL's `quote_ident`
//! writes it (`public`, `"My Schema"`), then the object name always double-quoted
//! (`public."User"`); functions add their identity arguments (`public."f"(integer, text)`).
//! `BTreeMap`s make the order deterministic. Nothing here is an OID, a relfilenode, a sequence's
//! current value or a role name that differs between builds (see [`super::normalize`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::sql::quote::{quote_ident, quote_literal};

/// A database's schema, normalised.
///
/// Tables carry their columns, constraints, indexes, triggers and policies, so a table that
/// exists on one side only is one difference, not one per column.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Catalog {
    /// Keyed by schema name (`public`).
    pub schemas: BTreeMap<String, Schema>,
    /// Keyed by extension name, quoted (`"pgcrypto"`).
    pub extensions: BTreeMap<String, Extension>,
    /// Tables and partitions (relkind `r` and `p`).
    pub tables: BTreeMap<String, Table>,
    /// Views and materialized views.
    pub views: BTreeMap<String, View>,
    /// Sequences, except the internal sequences of identity columns (those are described with
    /// their column).
    pub sequences: BTreeMap<String, Sequence>,
    pub enums: BTreeMap<String, EnumType>,
    pub domains: BTreeMap<String, Domain>,
    pub composite_types: BTreeMap<String, CompositeType>,
    /// Functions, procedures and aggregates, keyed by name and identity arguments.
    pub functions: BTreeMap<String, Function>,
    /// `ALTER DEFAULT PRIVILEGES` entries, keyed `for role R [in schema S] on tables|…`;
    /// values are normalised `grantee=PRIVILEGES` items.
    pub default_privileges: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    /// How many objects the catalog holds (schemas, extensions, relations, columns, constraints,
    /// indexes, triggers, policies, sequences, types, routines).
    pub fn object_count(&self) -> usize {
        let tables: usize = self
            .tables
            .values()
            .map(|t| {
                1 + t.columns.len()
                    + t.constraints.len()
                    + t.indexes.len()
                    + t.triggers.len()
                    + t.policies.len()
            })
            .sum();
        let views: usize = self
            .views
            .values()
            .map(|v| 1 + v.indexes.len() + v.triggers.len())
            .sum();
        self.schemas.len()
            + self.extensions.len()
            + tables
            + views
            + self.sequences.len()
            + self.enums.len()
            + self.domains.len()
            + self.composite_types.len()
            + self.functions.len()
    }
}

/// Who owns an object and who may use it.
///
/// `owner` is normalised: the database owner, `pg_database_owner` and ci-gate's own
/// `cigate_<run>_owner` roles all read `<owner>`; the bootstrap superuser reads `<superuser>`.
/// `grants` is `None` when the ACL is the built-in default for that owner (nothing granted or
/// revoked), else the effective ACL as sorted `grantee=PRIVILEGES` items (`PUBLIC=USAGE`,
/// `<owner>=ALL`, `anon=INSERT,SELECT`, a `*` marking WITH GRANT OPTION).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Access {
    pub owner: String,
    pub grants: Option<Vec<String>>,
}

impl Access {
    /// `owner <owner>; default privileges` or `owner <owner>; <owner>=ALL, anon=SELECT`.
    pub fn render(&self) -> String {
        match &self.grants {
            None => format!("owner {}; default privileges", self.owner),
            Some(g) if g.is_empty() => format!("owner {}; no privileges", self.owner),
            Some(g) => format!("owner {}; {}", self.owner, g.join(", ")),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Schema {
    pub name: String,
    pub access: Access,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extension {
    pub name: String,
    pub schema: String,
    pub version: String,
}

impl Extension {
    pub fn definition(&self) -> String {
        format!(
            "EXTENSION {} VERSION '{}' SCHEMA {}",
            quote_ident(&self.name),
            self.version,
            self.schema
        )
    }
}

/// A table or a partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `pg_get_partkeydef` for a partitioned table, e.g. `RANGE (created_at)`.
    pub partition_key: Option<String>,
    /// The parent (display name) when this table is a partition.
    pub partition_of: Option<String>,
    /// `FOR VALUES FROM (…) TO (…)` / `DEFAULT` when this table is a partition.
    pub partition_bound: Option<String>,
    /// Parents through plain (non-partition) inheritance, in order.
    pub inherits: Vec<String>,
    pub unlogged: bool,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// `default`, `nothing`, `full` or `index "name"`.
    pub replica_identity: String,
    /// Storage parameters (`fillfactor=70`), sorted.
    pub options: Vec<String>,
    /// In column order (dropped columns left out, so positions are logical, not `attnum`).
    pub columns: Vec<Column>,
    /// Keyed by quoted constraint name.
    pub constraints: BTreeMap<String, Constraint>,
    /// Keyed by qualified index name; indexes that implement a primary-key, unique or exclusion
    /// constraint are described by the constraint instead.
    pub indexes: BTreeMap<String, Index>,
    /// Keyed by quoted trigger name (internal triggers left out).
    pub triggers: BTreeMap<String, Trigger>,
    /// Keyed by quoted policy name.
    pub policies: BTreeMap<String, Policy>,
    pub access: Access,
    pub comment: Option<String>,
}

impl Table {
    /// Table-level properties that can differ, as `(aspect, value)` pairs (columns and other
    /// nested objects excluded). Column order is handled separately by the diff.
    pub fn aspects(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![
            (
                "kind",
                match &self.partition_key {
                    Some(k) => format!("partitioned by {k}"),
                    None => "table".into(),
                },
            ),
            (
                "partition of",
                match (&self.partition_of, &self.partition_bound) {
                    (Some(p), Some(b)) => format!("{p} {b}"),
                    (Some(p), None) => p.clone(),
                    _ => "none".into(),
                },
            ),
            (
                "inherits",
                if self.inherits.is_empty() {
                    "none".into()
                } else {
                    self.inherits.join(", ")
                },
            ),
            (
                "persistence",
                if self.unlogged { "unlogged" } else { "logged" }.into(),
            ),
            (
                "row level security",
                match (self.rls_enabled, self.rls_forced) {
                    (false, false) => "disabled".into(),
                    (true, false) => "enabled".into(),
                    (false, true) => "disabled (forced)".into(),
                    (true, true) => "enabled, forced".into(),
                },
            ),
            ("replica identity", self.replica_identity.clone()),
        ];
        a.push((
            "storage parameters",
            if self.options.is_empty() {
                "none".into()
            } else {
                self.options.join(", ")
            },
        ));
        a
    }

    /// The whole table as pseudo-DDL (used when it exists on one side only).
    pub fn render(&self, key: &str) -> String {
        let mut s = String::new();
        let unlogged = if self.unlogged { "UNLOGGED " } else { "" };
        let _ = write!(s, "CREATE {unlogged}TABLE {key}");
        if let (Some(p), Some(b)) = (&self.partition_of, &self.partition_bound) {
            let _ = write!(s, " PARTITION OF {p} {b}");
        }
        let mut items: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", quote_ident(&c.name), c.definition()))
            .collect();
        items.extend(
            self.constraints
                .iter()
                .map(|(name, c)| format!("CONSTRAINT {name} {}", c.definition)),
        );
        s.push_str(" (");
        for (i, item) in items.iter().enumerate() {
            s.push_str(if i == 0 { "\n    " } else { ",\n    " });
            s.push_str(item);
        }
        s.push_str(if items.is_empty() { ")" } else { "\n)" });
        if !self.inherits.is_empty() {
            let _ = write!(s, " INHERITS ({})", self.inherits.join(", "));
        }
        if let Some(k) = &self.partition_key {
            let _ = write!(s, " PARTITION BY {k}");
        }
        if !self.options.is_empty() {
            let _ = write!(s, " WITH ({})", self.options.join(", "));
        }
        s.push(';');
        for index in self.indexes.values() {
            let _ = write!(s, "\n{};", index.definition());
        }
        for trigger in self.triggers.values() {
            let _ = write!(s, "\n{};", trigger.definition());
        }
        if self.rls_enabled {
            let _ = write!(s, "\nALTER TABLE {key} ENABLE ROW LEVEL SECURITY;");
        }
        if self.rls_forced {
            let _ = write!(s, "\nALTER TABLE {key} FORCE ROW LEVEL SECURITY;");
        }
        for (name, policy) in &self.policies {
            let _ = write!(
                s,
                "\nCREATE POLICY {name} ON {key} {};",
                policy.definition()
            );
        }
        if let Some(c) = &self.comment {
            let _ = write!(s, "\nCOMMENT ON TABLE {key} IS {};", quote_literal(c));
        }
        for col in &self.columns {
            if let Some(c) = &col.comment {
                let _ = write!(
                    s,
                    "\nCOMMENT ON COLUMN {key}.{} IS {};",
                    quote_ident(&col.name),
                    quote_literal(c)
                );
            }
        }
        let _ = write!(s, "\n-- {}", self.access.render());
        s
    }
}

/// A table column.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    /// `format_type`, e.g. `character varying(255)`, `public."Role"`, `integer[]`.
    pub data_type: String,
    pub not_null: bool,
    /// `pg_get_expr` of the default (not set for generated columns).
    pub default: Option<String>,
    /// `GENERATED ALWAYS AS IDENTITY` / `GENERATED BY DEFAULT AS IDENTITY`, with the identity
    /// sequence's options in parentheses when they are not the defaults.
    pub identity: Option<String>,
    /// `GENERATED ALWAYS AS (expr) STORED` (or `VIRTUAL`).
    pub generated: Option<String>,
    /// Set only when it differs from the type's collation.
    pub collation: Option<String>,
    pub comment: Option<String>,
    /// Column-level privileges (`GRANT SELECT (col)`), sorted `grantee=PRIVILEGES`; empty if none.
    pub grants: Vec<String>,
}

impl Column {
    /// `text COLLATE "C" NOT NULL DEFAULT 'x'::text`.
    pub fn definition(&self) -> String {
        let mut s = self.data_type.clone();
        if let Some(c) = &self.collation {
            let _ = write!(s, " COLLATE {c}");
        }
        if self.not_null {
            s.push_str(" NOT NULL");
        }
        if let Some(d) = &self.default {
            let _ = write!(s, " DEFAULT {d}");
        }
        if let Some(i) = &self.identity {
            let _ = write!(s, " {i}");
        }
        if let Some(g) = &self.generated {
            let _ = write!(s, " {g}");
        }
        s
    }
}

/// A table or domain constraint.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Constraint {
    /// `primary key`, `unique`, `foreign key`, `check`, `exclusion`.
    pub kind: String,
    /// `pg_get_constraintdef`, which ends in `NOT VALID` when the constraint is not validated.
    pub definition: String,
    pub validated: bool,
    pub comment: Option<String>,
}

/// An index that does not implement a constraint.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Index {
    /// `pg_get_indexdef`, e.g. `CREATE UNIQUE INDEX "User_email_key" ON public."User" USING
    /// btree (email)`.
    pub indexdef: String,
    /// `pg_index.indisvalid`: false after a failed `CREATE INDEX CONCURRENTLY`.
    pub valid: bool,
    pub comment: Option<String>,
}

impl Index {
    /// The definition, marked when the index is invalid.
    pub fn definition(&self) -> String {
        if self.valid {
            self.indexdef.clone()
        } else {
            format!("{} -- INVALID", self.indexdef)
        }
    }
}

/// A user trigger (not the internal ones behind foreign keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trigger {
    /// `pg_get_triggerdef`.
    pub triggerdef: String,
    /// `enabled`, `disabled`, `replica` or `always`.
    pub enabled: String,
    pub comment: Option<String>,
}

impl Trigger {
    pub fn definition(&self) -> String {
        if self.enabled == "enabled" {
            self.triggerdef.clone()
        } else {
            format!("{} -- {}", self.triggerdef, self.enabled)
        }
    }
}

/// A row-level security policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Policy {
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    pub permissive: bool,
    /// Normalised role names, sorted (`PUBLIC` for everyone).
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
    pub comment: Option<String>,
}

impl Policy {
    /// `AS PERMISSIVE FOR SELECT TO anon USING (…) WITH CHECK (…)`.
    pub fn definition(&self) -> String {
        let mut s = format!(
            "AS {} FOR {} TO {}",
            if self.permissive {
                "PERMISSIVE"
            } else {
                "RESTRICTIVE"
            },
            self.command,
            self.roles.join(", ")
        );
        if let Some(u) = &self.using {
            let _ = write!(s, " USING ({u})");
        }
        if let Some(w) = &self.with_check {
            let _ = write!(s, " WITH CHECK ({w})");
        }
        s
    }
}

/// A sequence (its current value is deliberately not recorded).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    pub unlogged: bool,
    /// `public."User"."id"` for a `serial` column's sequence.
    pub owned_by: Option<String>,
    pub access: Access,
    pub comment: Option<String>,
}

impl Sequence {
    /// `AS bigint START 1 INCREMENT 1 MINVALUE 1 MAXVALUE … CACHE 1 NO CYCLE OWNED BY …`.
    pub fn definition(&self) -> String {
        let mut s = format!(
            "{}AS {} START {} INCREMENT {} MINVALUE {} MAXVALUE {} CACHE {} {}",
            if self.unlogged { "UNLOGGED " } else { "" },
            self.data_type,
            self.start,
            self.increment,
            self.min,
            self.max,
            self.cache,
            if self.cycle { "CYCLE" } else { "NO CYCLE" }
        );
        if let Some(o) = &self.owned_by {
            let _ = write!(s, " OWNED BY {o}");
        }
        s
    }
}

/// An enum type and its labels in sort order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnumType {
    pub schema: String,
    pub name: String,
    pub labels: Vec<String>,
    pub access: Access,
    pub comment: Option<String>,
}

impl EnumType {
    /// `ENUM ('USER', 'ADMIN')`.
    pub fn definition(&self) -> String {
        let labels: Vec<String> = self.labels.iter().map(|l| quote_literal(l)).collect();
        format!("ENUM ({})", labels.join(", "))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Domain {
    pub schema: String,
    pub name: String,
    pub base_type: String,
    pub collation: Option<String>,
    pub default: Option<String>,
    pub not_null: bool,
    /// Keyed by quoted constraint name.
    pub constraints: BTreeMap<String, Constraint>,
    pub access: Access,
    pub comment: Option<String>,
}

impl Domain {
    /// `integer DEFAULT 0 NOT NULL CONSTRAINT "positive" CHECK (VALUE > 0)`.
    pub fn definition(&self) -> String {
        let mut s = self.base_type.clone();
        if let Some(c) = &self.collation {
            let _ = write!(s, " COLLATE {c}");
        }
        if let Some(d) = &self.default {
            let _ = write!(s, " DEFAULT {d}");
        }
        if self.not_null {
            s.push_str(" NOT NULL");
        }
        for (name, c) in &self.constraints {
            let _ = write!(s, " CONSTRAINT {name} {}", c.definition);
        }
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompositeType {
    pub schema: String,
    pub name: String,
    /// In order: `("street" text, "zip" character varying(10))`.
    pub attributes: Vec<Attribute>,
    pub access: Access,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attribute {
    pub name: String,
    pub data_type: String,
    pub collation: Option<String>,
}

impl CompositeType {
    pub fn definition(&self) -> String {
        let attrs: Vec<String> = self
            .attributes
            .iter()
            .map(|a| match &a.collation {
                Some(c) => format!("{} {} COLLATE {c}", quote_ident(&a.name), a.data_type),
                None => format!("{} {}", quote_ident(&a.name), a.data_type),
            })
            .collect();
        format!("AS ({})", attrs.join(", "))
    }
}

/// A view or materialized view.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    /// `pg_get_viewdef(oid, true)`, trimmed.
    pub query: String,
    /// `security_invoker=true`, `check_option=local`, …, sorted.
    pub options: Vec<String>,
    /// False for a materialized view created `WITH NO DATA` and never refreshed.
    pub populated: bool,
    /// Output columns in order (names, comments and column privileges only: their types follow
    /// from the query).
    pub columns: Vec<ViewColumn>,
    /// Indexes of a materialized view.
    pub indexes: BTreeMap<String, Index>,
    /// `INSTEAD OF` triggers and the like.
    pub triggers: BTreeMap<String, Trigger>,
    pub access: Access,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewColumn {
    pub name: String,
    pub comment: Option<String>,
    pub grants: Vec<String>,
}

impl View {
    pub fn definition(&self) -> String {
        let mut s = String::new();
        if !self.options.is_empty() {
            let _ = write!(s, "WITH ({}) ", self.options.join(", "));
        }
        s.push_str("AS ");
        s.push_str(&self.query);
        if self.materialized && !self.populated {
            s.push_str(" WITH NO DATA");
        }
        s
    }
}

/// A function, procedure or aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// `pg_get_function_identity_arguments`, e.g. `a integer, b text`.
    pub arguments: String,
    /// `function`, `procedure`, `aggregate` or `window`.
    pub kind: String,
    /// `pg_get_functiondef` (a `CREATE AGGREGATE` summary for aggregates), trimmed.
    pub definition: String,
    pub access: Access,
    pub comment: Option<String>,
}
