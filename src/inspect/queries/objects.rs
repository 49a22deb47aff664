//! The catalog queries for objects that are not relations: schemas, extensions, enums, domains
//! and composite types (with domain constraints), sequences, functions and procedures, and
//! default privileges.

use super::*;

impl Reader<'_> {
    /// Schemas.
    pub(super) async fn schemas(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, pg_catalog.obj_description(n.oid, 'pg_namespace'), {} \
             FROM pg_catalog.pg_namespace n WHERE {USER_NS} AND {}",
            access_cols("n.nspacl", 'n', "n.nspowner"),
            not_ext("pg_catalog.pg_namespace", "n.oid"),
        );
        for row in self.fetch(sql, false).await? {
            let mut c = Cols::new(&row);
            let name = c.text()?;
            let comment = c.opt()?;
            let access = c.access(&self.roles)?;
            self.cat.schemas.insert(
                self.names.schema(&name),
                Schema {
                    name,
                    access,
                    comment,
                },
            );
        }
        Ok(())
    }

    /// Extensions.
    pub(super) async fn extensions(&mut self) -> Result<(), sqlx::Error> {
        let sql = "SELECT e.extname::text, e.extversion, n.nspname::text \
                   FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
            .to_string();
        for row in self.fetch(sql, false).await? {
            let mut c = Cols::new(&row);
            let name = c.text()?;
            let version = c.text()?;
            let schema = self.names.schema(&c.text()?);
            self.cat.extensions.insert(
                quote_ident(&name),
                Extension {
                    name,
                    schema,
                    version,
                },
            );
        }
        Ok(())
    }

    /// Enums, domains and composite types.
    pub(super) async fn types(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, t.typname::text, t.typtype::text, \
               ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), \
               CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END, \
               t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 'pg_catalog.pg_type'::pg_catalog.regclass), \
               CASE WHEN t.typtype = 'd' THEN {} END, \
               pg_catalog.obj_description(t.oid, 'pg_type'), {} \
             FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
             LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype \
             LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid \
             WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND c.relkind = 'c')) AND {USER_NS} AND {} \
              ",
            collation_col("t.typcollation", "coalesce(bt.typcollation, 0)"),
            access_cols("t.typacl", 'T', "t.typowner"),
            not_ext("pg_catalog.pg_type", "t.oid"),
        );
        for row in self.fetch(sql, false).await? {
            let mut c = Cols::new(&row);
            let schema = c.text()?;
            let name = c.text()?;
            let typtype = c.text()?;
            let labels = c.list()?;
            let base_type = c.opt()?;
            let not_null = c.flag()?;
            let default = c.opt()?;
            let collation = c.opt()?;
            let comment = c.opt()?;
            let access = c.access(&self.roles)?;
            let key = self.names.qualify(&schema, &name);
            match typtype.as_str() {
                "e" => {
                    self.cat.enums.insert(
                        key,
                        EnumType {
                            schema,
                            name,
                            labels,
                            access,
                            comment,
                        },
                    );
                }
                "d" => {
                    self.cat.domains.insert(
                        key,
                        Domain {
                            schema,
                            name,
                            base_type: base_type.unwrap_or_default(),
                            collation,
                            default,
                            not_null,
                            constraints: BTreeMap::new(),
                            access,
                            comment,
                        },
                    );
                }
                _ => {
                    self.cat.composite_types.insert(
                        key,
                        CompositeType {
                            schema,
                            name,
                            attributes: Vec::new(),
                            access,
                            comment,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Domain constraints.
    pub(super) async fn domain_constraints(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, t.typname::text, k.conname::text, k.contype::text, \
               pg_catalog.pg_get_constraintdef(k.oid, true), k.convalidated, \
               pg_catalog.obj_description(k.oid, 'pg_constraint') \
             FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_type t ON t.oid = k.contypid \
             JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
             WHERE k.contypid <> 0 AND k.contype = 'c' AND {USER_NS}"
        );
        for row in self.fetch(sql, false).await? {
            let mut c = Cols::new(&row);
            let key = self.names.qualify(&c.text()?, &c.text()?);
            let name = c.text()?;
            let constraint = constraint(&mut c)?;
            if let Some(domain) = self.cat.domains.get_mut(&key) {
                domain.constraints.insert(quote_ident(&name), constraint);
            }
        }
        Ok(())
    }

    /// Sequences (identity columns' sequences are described with their column).
    pub(super) async fn sequences(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, \
               s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle, c.relpersistence = 'u', \
               (SELECT tn.nspname::text || chr(31) || tc.relname::text || chr(31) || ta.attname::text \
                FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid \
                JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace \
                JOIN pg_catalog.pg_attribute ta ON ta.attrelid = tc.oid AND ta.attnum = d.refobjsubid \
                WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid \
                  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a' \
                  AND d.refobjsubid > 0 LIMIT 1), \
               pg_catalog.obj_description(c.oid, 'pg_class'), {} \
             FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE {} AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'i')",
            access_cols("c.relacl", 's', "c.relowner"),
            rel_filter("c"),
        );
        for row in self.fetch(sql, true).await? {
            let mut c = Cols::new(&row);
            let schema = c.text()?;
            let name = c.text()?;
            let data_type = c.text()?;
            let (start, increment, min, max, cache) =
                (c.next()?, c.next()?, c.next()?, c.next()?, c.next()?);
            let cycle = c.flag()?;
            let unlogged = c.flag()?;
            let owned = c.opt()?;
            let comment = c.opt()?;
            let access = c.access(&self.roles)?;
            let owned_by = match owned {
                Some(owned) => {
                    let parts: Vec<&str> = owned.split(SEP).collect();
                    if parts.len() == 3 {
                        if self.excluded.iter().any(|t| t == parts[1]) {
                            continue; // belongs to an excluded table
                        }
                        Some(format!(
                            "{}.{}",
                            self.names.qualify(parts[0], parts[1]),
                            quote_ident(parts[2])
                        ))
                    } else {
                        None
                    }
                }
                None => None,
            };
            self.cat.sequences.insert(
                self.names.qualify(&schema, &name),
                Sequence {
                    schema,
                    name,
                    data_type,
                    start,
                    increment,
                    min,
                    max,
                    cache,
                    cycle,
                    unlogged,
                    owned_by,
                    access,
                    comment,
                },
            );
        }
        Ok(())
    }

    /// Functions, procedures and aggregates.
    pub(super) async fn functions(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT n.nspname::text, p.proname::text, pg_catalog.pg_get_function_identity_arguments(p.oid), \
               p.prokind::text, \
               CASE WHEN p.prokind = 'a' THEN \
                 'CREATE AGGREGATE ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' \
                 || pg_catalog.pg_get_function_arguments(p.oid) || ') (SFUNC = ' || ag.aggtransfn::text \
                 || ', STYPE = ' || pg_catalog.format_type(ag.aggtranstype, NULL) \
                 || coalesce(', FINALFUNC = ' || nullif(ag.aggfinalfn::oid, 0)::regproc::text, '') \
                 || coalesce(', INITCOND = ' || quote_literal(ag.agginitval), '') || ')' \
               ELSE pg_catalog.pg_get_functiondef(p.oid) END, \
               pg_catalog.obj_description(p.oid, 'pg_proc'), {} \
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
             LEFT JOIN pg_catalog.pg_aggregate ag ON ag.aggfnoid = p.oid \
             WHERE {USER_NS} AND {}",
            access_cols("p.proacl", 'f', "p.proowner"),
            not_ext("pg_catalog.pg_proc", "p.oid"),
        );
        for row in self.fetch(sql, false).await? {
            let mut c = Cols::new(&row);
            let schema = c.text()?;
            let name = c.text()?;
            let arguments = c.text()?;
            let kind = match c.text()?.as_str() {
                "p" => "procedure",
                "a" => "aggregate",
                "w" => "window",
                _ => "function",
            }
            .to_string();
            let definition = c.opt()?.unwrap_or_default().trim().to_string();
            let comment = c.opt()?;
            let access = c.access(&self.roles)?;
            self.cat.functions.insert(
                format!("{}({arguments})", self.names.qualify(&schema, &name)),
                Function {
                    schema,
                    name,
                    arguments,
                    kind,
                    definition,
                    access,
                    comment,
                },
            );
        }
        Ok(())
    }

    /// Default privileges.
    pub(super) async fn default_privileges(&mut self) -> Result<(), sqlx::Error> {
        let sql = format!(
            "SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, n.nspname::text, d.defaclobjtype::text, {}, {} \
             FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace",
            explode("d.defaclacl"),
            // What the role holds on an object of this type by default: "ALL" for that type.
            explode(
                "pg_catalog.acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END::\"char\", \
                 d.defaclrole)"
            ),
        );
        for row in self.fetch(sql, false).await? {
            let mut c = Cols::new(&row);
            let raw_role = c.text()?;
            let role = self.roles.normalize(&raw_role);
            let schema = c.opt()?;
            let objects = match c.text()?.as_str() {
                "r" => "tables",
                "S" => "sequences",
                "f" => "functions",
                "T" => "types",
                "n" => "schemas",
                other => other,
            }
            .to_string();
            let grants = self.roles.default_grants(&raw_role, &c.list()?, &c.list()?);
            let key = match schema {
                Some(s) => format!(
                    "for role {role} in schema {} on {objects}",
                    self.names.schema(&s)
                ),
                None => format!("for role {role} on {objects}"),
            };
            self.cat.default_privileges.insert(key, grants);
        }
        Ok(())
    }
}

pub(super) fn constraint(c: &mut Cols<'_>) -> Result<Constraint, sqlx::Error> {
    let kind = match c.text()?.as_str() {
        "p" => "primary key",
        "u" => "unique",
        "f" => "foreign key",
        "c" => "check",
        "x" => "exclusion",
        other => other,
    }
    .to_string();
    Ok(Constraint {
        kind,
        definition: c.text()?,
        validated: c.flag()?,
        comment: c.opt()?,
    })
}
