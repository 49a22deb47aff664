//! `invalid-migration-layout`: the migrations directory would break the tool's deploy (stray folder, unreadable lock file, invalid UTF-8). Documentation: `invalid_migration_layout.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Severity};

pub const RULE: Rule = Rule {
    id: "invalid-migration-layout",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "the migrations directory would break the tool's deploy (stray folder, unreadable lock file, invalid UTF-8)",
    doc: include_str!("invalid_migration_layout.md"),
    check,
};

use crate::check::{Finding, Source};
use crate::discover::LayoutProblem;

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let problems: &[LayoutProblem] = &ev.head.problems;
    problems
        .iter()
        .map(|p| match p {
            LayoutProblem::MissingScript { dir } => Finding::new(
                &RULE,
                Source::History,
                format!("`{dir}` has no migration.sql: `prisma migrate deploy` fails with P3015 before applying anything"),
            )
            .file(dir.clone())
            .fix("delete the folder, or add its migration.sql"),
            LayoutProblem::UnreadableLockProvider { file, line, read_as } => {
                let mut f = Finding::new(
                    &RULE,
                    Source::History,
                    format!("Prisma reads the provider in `{file}` as `{read_as}`, not `postgresql`: deploy fails with P3019"),
                )
                .file(file.clone())
                .evidence("Prisma does not parse migration_lock.toml as TOML: it takes the first line starting with `provider` and trims `provider = ` and quotes")
                .fix("write the line exactly as Prisma generates it: provider = \"postgresql\"");
                if let Some(l) = line {
                    f = f.at(*l, 1);
                }
                f
            }
            LayoutProblem::NotUtf8 { file, line, column, byte_offset } => Finding::new(
                &RULE,
                Source::History,
                format!("`{file}` is not valid UTF-8 (byte {byte_offset}): Prisma ≤ 6.5 refuses it; ≥ 6.6 replaces the bytes with U+FFFD and runs something else than the file says"),
            )
            .file(file.clone())
            .at(*line, *column)
            .fix("re-save the file as UTF-8"),
        })
        .collect()
}
