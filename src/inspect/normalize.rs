//! Role names and ACLs, normalised so that two databases built from the same migrations compare
//! equal whoever built them.
//!
//! ci-gate builds every database as an owner role named `cigate_<run>_owner`, a different name
//! on every run, and a live database has yet another owner. What matters is whether an object
//! belongs to the database owner, not that role's name, so:
//! - the database owner (`pg_database.datdba`), `pg_database_owner` and any `cigate_…_owner`
//!   role read `<owner>`. The `cigate_` rule keeps `CREATE DATABASE b TEMPLATE a` clones equal
//!   to `a`: the clone's owner is whoever cloned it, but its objects still belong to the role
//!   that built `a`;
//! - any other `cigate_<run>_<purpose>` role reads `<cigate_<purpose>>`;
//! - the bootstrap superuser (OID 10: `postgres`, `rdsadmin`, …) reads `<superuser>`;
//! - `PUBLIC` stays `PUBLIC`, every other role keeps its name.
//!
//! ACLs are read with `aclexplode` (grantors dropped: who granted does not change who may),
//! grouped per grantee into `grantee=PRIV,PRIV` with privileges sorted by name and `*` for WITH
//! GRANT OPTION; a grantee holding every privilege the object type has reads `grantee=ALL`. An
//! ACL equal to the type's built-in default for its owner (a `NULL` `relacl`, or grants that
//! were later revoked) is recorded as "default", so the two spellings compare equal.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::Access;

/// Separates the role from the privilege in the items the queries return.
pub(crate) const SEP: char = '\u{1f}';

/// Placeholder for the database owner.
pub const OWNER: &str = "<owner>";
/// Placeholder for the bootstrap superuser.
pub const SUPERUSER: &str = "<superuser>";

/// Role-name normalisation for one database.
#[derive(Debug, Clone)]
pub(crate) struct Roles {
    /// The database owner's real name.
    pub db_owner: String,
    /// The bootstrap superuser's real name.
    pub bootstrap: String,
}

impl Roles {
    pub fn normalize(&self, role: &str) -> String {
        if role == "PUBLIC" {
            return role.to_string();
        }
        if role == self.db_owner || role == "pg_database_owner" {
            return OWNER.to_string();
        }
        if let Some(rest) = role.strip_prefix("cigate_") {
            let purpose = rest.split_once('_').map(|(_, p)| p).unwrap_or("");
            return match purpose {
                "owner" => OWNER.to_string(),
                "" => "<cigate>".to_string(),
                p => format!("<cigate_{p}>"),
            };
        }
        if role == self.bootstrap {
            return SUPERUSER.to_string();
        }
        role.to_string()
    }

    /// Group `role<SEP>PRIV[*]` items per normalised grantee.
    fn group(&self, items: &[String]) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for item in items {
            let (role, privilege) = item.split_once(SEP).unwrap_or(("PUBLIC", item.as_str()));
            out.entry(self.normalize(role))
                .or_default()
                .insert(privilege.to_string());
        }
        out
    }

    /// Owner and object ACL. `effective` is the exploded `coalesce(acl, acldefault(…))`,
    /// `default` the exploded `acldefault(…)` for the same owner.
    pub fn access(&self, owner: &str, effective: &[String], default: &[String]) -> Access {
        let owner = self.normalize(owner);
        let effective = self.group(effective);
        let default = self.group(default);
        let grants = if effective == default {
            None
        } else {
            // Every privilege this object type has: what its owner holds by default.
            let all: BTreeSet<String> = default.get(&owner).cloned().unwrap_or_default();
            Some(render(&effective, Some(&all)))
        };
        Access { owner, grants }
    }

    /// A column's (or default-privileges entry's) grants; empty when there are none.
    pub fn grants(&self, items: &[String]) -> Vec<String> {
        render(&self.group(items), None)
    }

    /// A default-privileges entry: its grants, with `grantee=ALL` where the grantee holds
    /// everything `type_default` (the exploded `acldefault` for the entry's role) gives an owner.
    pub fn default_grants(
        &self,
        role: &str,
        items: &[String],
        type_default: &[String],
    ) -> Vec<String> {
        let all: BTreeSet<String> = self
            .group(type_default)
            .remove(&self.normalize(role))
            .unwrap_or_default();
        render(&self.group(items), Some(&all))
    }

    /// Sorted, normalised role names (policies).
    pub fn role_list(&self, roles: &[String]) -> Vec<String> {
        let set: BTreeSet<String> = roles.iter().map(|r| self.normalize(r)).collect();
        set.into_iter().collect()
    }
}

fn render(
    grants: &BTreeMap<String, BTreeSet<String>>,
    all: Option<&BTreeSet<String>>,
) -> Vec<String> {
    grants
        .iter()
        .map(|(role, privs)| {
            let plain: BTreeSet<String> = privs.iter().map(|p| p.replace('*', "")).collect();
            let text = match all {
                Some(all) if !all.is_empty() && plain == *all && plain.len() == privs.len() => {
                    if privs.iter().all(|p| p.ends_with('*')) {
                        "ALL*".to_string()
                    } else if privs.iter().all(|p| !p.ends_with('*')) {
                        "ALL".to_string()
                    } else {
                        join(privs)
                    }
                }
                _ => join(privs),
            };
            format!("{role}={text}")
        })
        .collect()
}

fn join(privs: &BTreeSet<String>) -> String {
    privs.iter().cloned().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Roles {
        Roles {
            db_owner: "app".into(),
            bootstrap: "postgres".into(),
        }
    }

    fn items(list: &[(&str, &str)]) -> Vec<String> {
        list.iter().map(|(r, p)| format!("{r}{SEP}{p}")).collect()
    }

    #[test]
    fn owner_roles_normalise_to_one_placeholder() {
        let r = roles();
        assert_eq!(r.normalize("app"), OWNER);
        assert_eq!(r.normalize("pg_database_owner"), OWNER);
        assert_eq!(r.normalize("cigate_ab12cd34ef_owner"), OWNER);
        assert_eq!(r.normalize("cigate_x_reader"), "<cigate_reader>");
        assert_eq!(r.normalize("postgres"), SUPERUSER);
        assert_eq!(r.normalize("anon"), "anon");
        assert_eq!(r.normalize("PUBLIC"), "PUBLIC");
    }

    #[test]
    fn default_acl_reads_as_default_and_grants_group_per_grantee() {
        let r = roles();
        let default = items(&[("app", "SELECT"), ("app", "INSERT")]);
        assert_eq!(r.access("app", &default, &default).grants, None);
        let granted = items(&[
            ("cigate_q_owner", "SELECT"),
            ("cigate_q_owner", "INSERT"),
            ("anon", "SELECT"),
            ("anon", "UPDATE*"),
        ]);
        let a = r.access("cigate_q_owner", &granted, &default);
        assert_eq!(a.owner, OWNER);
        assert_eq!(
            a.grants,
            Some(vec![
                "<owner>=ALL".to_string(),
                "anon=SELECT,UPDATE*".into()
            ])
        );
    }
}
