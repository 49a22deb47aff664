//! Finds the migrations directory of a project: `--migrations`, then config `migrations:`, then
//! `prisma/migrations`, then the `migrations` folder next to any `schema.prisma` under the
//! project (skipping `node_modules`, `.git` and build output). More than one candidate is an
//! error listing them.

use std::path::{Path, PathBuf};

use super::DiscoverError;
use super::tree::relative;

/// Directories never searched for `schema.prisma`.
const SKIP: &[&str] = &[
    "node_modules",
    ".git",
    "target",
    "dist",
    "build",
    ".next",
    ".turbo",
    "vendor",
];

/// The migrations directory as an absolute path.
pub fn migrations_dir(
    project: &Path,
    explicit: Option<&Path>,
    configured: Option<&Path>,
) -> Result<PathBuf, DiscoverError> {
    if let Some(dir) = explicit.or(configured) {
        let abs = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            project.join(dir)
        };
        return Ok(abs);
    }
    let default = project.join("prisma/migrations");
    if default.is_dir() {
        return Ok(default);
    }
    let mut found = Vec::new();
    walk(project, 0, &mut found);
    found.sort();
    found.dedup();
    match found.len() {
        0 => Err(DiscoverError::NotFound {
            project: project.to_path_buf(),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(DiscoverError::Ambiguous {
            project: project.to_path_buf(),
            candidates: found.iter().map(|p| relative(project, p)).collect(),
        }),
    }
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if ft.is_dir() {
            if !SKIP.contains(&name.as_str()) && !name.starts_with('.') {
                subdirs.push(entry.path());
            }
        } else if ft.is_file() && name == "schema.prisma" {
            let migrations = dir.join("migrations");
            if migrations.is_dir() {
                found.push(migrations);
            }
        }
    }
    // a multi-file schema (prismaSchemaFolder): prisma/schema/*.prisma with migrations beside
    if dir.file_name().is_some_and(|n| n == "schema") && dir.join("../migrations").is_dir() {
        let has_prisma = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "prisma"))
            })
            .unwrap_or(false);
        if has_prisma && let Some(parent) = dir.parent() {
            found.push(parent.join("migrations"));
        }
    }
    for sub in subdirs {
        walk(&sub, depth + 1, found);
    }
}
