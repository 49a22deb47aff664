//! The catalog queries for tables and what hangs off relations: tables and partitions, views
//! and materialized views, the columns of tables, views and composite types, table constraints,
//! indexes, triggers and row-level security policies.

use super::objects::constraint;
use super::*;

impl Reader<'_> {
    /// Tables and partitions.
    pub(super) async fn tables(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, \
               CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END, \
               c.relispartition, \
               CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END, \
               ARRAY(SELECT pn.nspname::text || chr(31) || pc.relname::text FROM pg_catalog.pg_inherits i \
                     JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent \
                     JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace \
                     WHERE i.inhrelid = c.oid ORDER BY i.inhseqno), \
               c.relpersistence = 'u', c.relrowsecurity, c.relforcerowsecurity, c.relreplident::text, \
               (SELECT ic.relname::text FROM pg_catalog.pg_index ix JOIN pg_catalog.pg_class ic ON ic.oid = ix.indexrelid \
                WHERE ix.indrelid = c.oid AND ix.indisreplident LIMIT 1), \
               coalesce(c.reloptions, '{{}}')::text[], \
               pg_catalog.obj_description(c.oid, 'pg_class'), {} \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND {}",
            access_cols("c.relacl", 'r', "c.relowner"),
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let schema = c.text()?;
            let name = c.text()?;
            let partition_key = c.opt()?;
            let is_partition = c.flag()?;
            let partition_bound = c.opt()?;
            let parents: Vec<String> = c
                .list()?
                .iter()
                .map(|p| self.names.qualify_joined(p))
                .collect();
            let unlogged = c.flag()?;
            let rls_enabled = c.flag()?;
            let rls_forced = c.flag()?;
            let replident = c.text()?;
            let replident_index = c.opt()?;
            let mut options = c.list()?;
            options.sort();
            let comment = c.opt()?;
            let access = c.access(&self.roles)?;
            let (partition_of, inherits) = if is_partition {
                (parents.first().cloned(), Vec::new())
            } else {
                (None, parents)
            };
            let replica_identity = match replident.as_str() {
                "n" => "nothing".to_string(),
                "f" => "full".to_string(),
                "i" => format!(
                    "index {}",
                    quote_ident(replident_index.as_deref().unwrap_or("?"))
                ),
                _ => "default".to_string(),
            };
            self.cat.tables.insert(
                self.names.qualify(&schema, &name),
                Table {
                    schema,
                    name,
                    partition_key,
                    partition_of,
                    partition_bound,
                    inherits,
                    unlogged,
                    rls_enabled,
                    rls_forced,
                    replica_identity,
                    options,
                    access,
                    comment,
                    ..Table::default()
                },
            );
        }
        Ok(())
    }

    /// Views and materialized views.
    pub(super) async fn views(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, c.relkind = 'm', pg_catalog.pg_get_viewdef(c.oid, true), \
               coalesce(c.reloptions, '{{}}')::text[], c.relispopulated, \
               pg_catalog.obj_description(c.oid, 'pg_class'), {} \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('v', 'm') AND {}",
            access_cols("c.relacl", 'r', "c.relowner"),
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let schema = c.text()?;
            let name = c.text()?;
            let materialized = c.flag()?;
            let query = c
                .opt()?
                .unwrap_or_default()
                .trim()
                .trim_end_matches(';')
                .to_string();
            let mut options = c.list()?;
            options.sort();
            let populated = c.flag()?;
            let comment = c.opt()?;
            let access = c.access(&self.roles)?;
            self.cat.views.insert(
                self.names.qualify(&schema, &name),
                View {
                    schema,
                    name,
                    materialized,
                    query,
                    options,
                    populated,
                    access,
                    comment,
                    ..View::default()
                },
            );
        }
        Ok(())
    }

    /// Columns of tables, views and composite types, in order.
    pub(super) async fn columns(&mut self) -> Result<(), sqlx::Error> {
        let generated = if self.version_num >= 120000 {
            "a.attgenerated::text"
        } else {
            "''::text"
        };
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text, a.attname::text, \
               pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
               pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, {generated}, {}, \
               pg_catalog.col_description(c.oid, a.attnum), {}, \
               pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, \
               s.seqcache, s.seqcycle \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
             LEFT JOIN pg_catalog.pg_depend di ON a.attidentity <> '' \
               AND di.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND di.refobjid = c.oid \
               AND di.refobjsubid = a.attnum AND di.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
               AND di.deptype = 'i' \
             LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = di.objid \
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'c') AND {} \
             ORDER BY c.oid, a.attnum",
            collation_col("a.attcollation", "t.typcollation"),
            explode("a.attacl"),
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let schema = c.text()?;
            let rel = c.text()?;
            let relkind = c.text()?;
            let name = c.text()?;
            let data_type = c.text()?;
            let not_null = c.flag()?;
            let expr = c.opt()?;
            let identity_kind = c.opt()?.unwrap_or_default();
            let generated_kind = c.opt()?.unwrap_or_default();
            let collation = c.opt()?;
            let comment = c.opt()?;
            let grants = self.roles.grants(&c.list()?);
            let seq_type = c.opt()?;
            let seq: Option<(i64, i64, i64, i64, i64, bool)> = match c.next::<Option<i64>>()? {
                Some(start) => Some((start, c.next()?, c.next()?, c.next()?, c.next()?, c.next()?)),
                None => None,
            };
            let key = self.names.qualify(&schema, &rel);
            match relkind.as_str() {
                "r" | "p" => {
                    let Some(table) = self.cat.tables.get_mut(&key) else {
                        continue;
                    };
                    let (default, generated) = match generated_kind.as_str() {
                        "s" => (
                            None,
                            Some(format!(
                                "GENERATED ALWAYS AS ({}) STORED",
                                expr.unwrap_or_default()
                            )),
                        ),
                        "v" => (
                            None,
                            Some(format!(
                                "GENERATED ALWAYS AS ({}) VIRTUAL",
                                expr.unwrap_or_default()
                            )),
                        ),
                        _ => (expr, None),
                    };
                    let identity = match identity_kind.as_str() {
                        "a" => Some("GENERATED ALWAYS AS IDENTITY".to_string()),
                        "d" => Some("GENERATED BY DEFAULT AS IDENTITY".to_string()),
                        _ => None,
                    }
                    .map(|text| match (&seq_type, seq) {
                        (Some(ty), Some(seq)) => identity_with_options(text, &data_type, ty, seq),
                        _ => text,
                    });
                    table.columns.push(Column {
                        name,
                        data_type,
                        not_null,
                        default,
                        identity,
                        generated,
                        collation,
                        comment,
                        grants,
                    });
                }
                "v" | "m" => {
                    if let Some(view) = self.cat.views.get_mut(&key) {
                        view.columns.push(ViewColumn {
                            name,
                            comment,
                            grants,
                        });
                    }
                }
                _ => {
                    if let Some(ty) = self.cat.composite_types.get_mut(&key) {
                        ty.attributes.push(Attribute {
                            name,
                            data_type,
                            collation,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Table constraints (not-null constraints are the columns' `not_null`; constraint triggers
    /// are triggers). Constraints, indexes and triggers a partition inherits from its partitioned
    /// parent are described once, on the parent: a foreign key on a partitioned table is one
    /// object, not one per partition (and one that references a partitioned table has a clone per
    /// referenced partition, all with the same name).
    pub(super) async fn table_constraints(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text, \
               pg_catalog.pg_get_constraintdef(k.oid, true), k.convalidated, \
               pg_catalog.obj_description(k.oid, 'pg_constraint') \
             FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE k.contype IN ('c', 'f', 'p', 'u', 'x') AND k.conparentid = 0 \
               AND c.relkind IN ('r', 'p') AND {}",
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let key = self.names.qualify(&c.text()?, &c.text()?);
            let name = c.text()?;
            let constraint = constraint(&mut c)?;
            if let Some(table) = self.cat.tables.get_mut(&key) {
                table.constraints.insert(quote_ident(&name), constraint);
            }
        }
        Ok(())
    }

    /// Indexes that do not implement a constraint.
    pub(super) async fn indexes(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, i.relname::text, pg_catalog.pg_get_indexdef(i.oid), \
               x.indisvalid, pg_catalog.obj_description(i.oid, 'pg_class') \
             FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
             JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'm') AND NOT i.relispartition AND {} \
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid \
                               AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))",
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let schema = c.text()?;
            let rel_key = self.names.qualify(&schema, &c.text()?);
            let key = self.names.qualify(&schema, &c.text()?);
            let index = Index {
                indexdef: c.text()?,
                valid: c.flag()?,
                comment: c.opt()?,
            };
            if let Some(table) = self.cat.tables.get_mut(&rel_key) {
                table.indexes.insert(key, index);
            } else if let Some(view) = self.cat.views.get_mut(&rel_key) {
                view.indexes.insert(key, index);
            }
        }
        Ok(())
    }

    /// User triggers (before PostgreSQL 13, clones on partitions are internal).
    pub(super) async fn triggers(&mut self) -> Result<(), sqlx::Error> {
        let cloned = if self.version_num >= 130000 {
            "t.tgparentid = 0"
        } else {
            "true"
        };
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_catalog.pg_get_triggerdef(t.oid, true), \
               t.tgenabled::text, pg_catalog.obj_description(t.oid, 'pg_trigger') \
             FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT t.tgisinternal AND {cloned} AND {}",
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let rel_key = self.names.qualify(&c.text()?, &c.text()?);
            let name = quote_ident(&c.text()?);
            let triggerdef = c.text()?;
            let enabled = match c.text()?.as_str() {
                "D" => "disabled",
                "R" => "replica",
                "A" => "always",
                _ => "enabled",
            }
            .to_string();
            let trigger = Trigger {
                triggerdef,
                enabled,
                comment: c.opt()?,
            };
            if let Some(table) = self.cat.tables.get_mut(&rel_key) {
                table.triggers.insert(name, trigger);
            } else if let Some(view) = self.cat.views.get_mut(&rel_key) {
                view.triggers.insert(name, trigger);
            }
        }
        Ok(())
    }

    /// Row-level security policies.
    pub(super) async fn policies(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, p.polname::text, p.polcmd::text, p.polpermissive, \
               ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(r)::text END \
                     FROM unnest(p.polroles) r), \
               pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), \
               pg_catalog.obj_description(p.oid, 'pg_policy') \
             FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE {}",
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let rel_key = self.names.qualify(&c.text()?, &c.text()?);
            let name = quote_ident(&c.text()?);
            let command = match c.text()?.as_str() {
                "r" => "SELECT",
                "a" => "INSERT",
                "w" => "UPDATE",
                "d" => "DELETE",
                _ => "ALL",
            }
            .to_string();
            let policy = Policy {
                command,
                permissive: c.flag()?,
                roles: self.roles.role_list(&c.list()?),
                using: c.opt()?,
                with_check: c.opt()?,
                comment: c.opt()?,
            };
            if let Some(table) = self.cat.tables.get_mut(&rel_key) {
                table.policies.insert(name, policy);
            }
        }
        Ok(())
    }
}

/// `GENERATED … AS IDENTITY`, plus the sequence options that differ from what a plain
/// `GENERATED … AS IDENTITY` on a column of this type would get.
fn identity_with_options(
    text: String,
    column_type: &str,
    seq_type: &str,
    (start, increment, min, max, cache, cycle): (i64, i64, i64, i64, i64, bool),
) -> String {
    let type_max = match seq_type {
        "smallint" => i64::from(i16::MAX),
        "integer" => i64::from(i32::MAX),
        _ => i64::MAX,
    };
    let type_min = match seq_type {
        "smallint" => i64::from(i16::MIN),
        "integer" => i64::from(i32::MIN),
        _ => i64::MIN,
    };
    let (default_min, default_max) = if increment > 0 {
        (1, type_max)
    } else {
        (type_min, -1)
    };
    let default_start = if increment > 0 { min } else { max };
    let mut opts = Vec::new();
    if seq_type != column_type {
        opts.push(format!("AS {seq_type}"));
    }
    if start != default_start {
        opts.push(format!("START WITH {start}"));
    }
    if increment != 1 {
        opts.push(format!("INCREMENT BY {increment}"));
    }
    if min != default_min {
        opts.push(format!("MINVALUE {min}"));
    }
    if max != default_max {
        opts.push(format!("MAXVALUE {max}"));
    }
    if cache != 1 {
        opts.push(format!("CACHE {cache}"));
    }
    if cycle {
        opts.push("CYCLE".into());
    }
    if opts.is_empty() {
        text
    } else {
        format!("{text} ({})", opts.join(" "))
    }
}
