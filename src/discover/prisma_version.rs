//! Which Prisma version a project uses, from `prisma-version:` in config, lockfiles
//! (`package-lock.json`, `pnpm-lock.yaml`, `yarn.lock`, `bun.lock`) or `package.json` (`prisma`,
//! then `@prisma/client`). The version decides how `migration.sql` is applied
//! (`reference/prisma-versions.md`): up to 7.3 the whole file as one message; from 7.4 statement
//! by statement.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A Prisma version and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrismaVersion {
    pub major: u32,
    pub minor: u32,
    /// As written, e.g. "^6.19.0" or "7.4.1".
    pub raw: String,
    /// e.g. "package.json (prisma)".
    pub source: String,
}

impl PrismaVersion {
    /// Prisma ≥ 7.4 splits scripts into statements and autocommits each.
    pub fn splits_statements(&self) -> bool {
        (self.major, self.minor) >= (7, 4)
    }
}

/// Parse "^6.19.0", "~7.4", "7.4.1", ">=7.4.0 <8", "npm:prisma@7.4.0".
pub fn parse(raw: &str, source: &str) -> Option<PrismaVersion> {
    let start = raw.find(|c: char| c.is_ascii_digit())?;
    let rest = &raw[start..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some(PrismaVersion {
        major,
        minor,
        raw: raw.to_string(),
        source: source.to_string(),
    })
}

/// Look for the version in `dirs` (project root first, then e.g. the schema's package),
/// lockfiles before `package.json` since they give the exact installed version.
pub fn detect(dirs: &[PathBuf]) -> Option<PrismaVersion> {
    for dir in dirs {
        if let Some(v) = from_lockfiles(dir) {
            return Some(v);
        }
    }
    for dir in dirs {
        if let Some(v) = from_package_json(dir) {
            return Some(v);
        }
    }
    None
}

fn from_package_json(dir: &Path) -> Option<PrismaVersion> {
    package_json(&read_text(&dir.join("package.json"))?)
}

/// A reader of one file's text.
type Reader = fn(&str) -> Option<PrismaVersion>;

fn from_lockfiles(dir: &Path) -> Option<PrismaVersion> {
    let readers: [(&str, Reader); 4] = [
        ("package-lock.json", package_lock),
        ("pnpm-lock.yaml", pnpm_lock),
        ("yarn.lock", yarn_lock),
        ("bun.lock", bun_lock),
    ];
    readers.iter().find_map(|(file, read)| {
        let text = read_text(&dir.join(file))?;
        read(&text)
    })
}

/// The version in a `package.json`'s text: `prisma`, then `@prisma/client`, in
/// `devDependencies`, `dependencies`, `peerDependencies`.
pub fn package_json(text: &str) -> Option<PrismaVersion> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    for pkg in ["prisma", "@prisma/client"] {
        for section in ["devDependencies", "dependencies", "peerDependencies"] {
            if let Some(v) = json
                .get(section)
                .and_then(|s| s.get(pkg))
                .and_then(|v| v.as_str())
                && let Some(parsed) = parse(v, "package.json")
            {
                return Some(parsed);
            }
        }
    }
    None
}

/// The installed version in a `package-lock.json`'s text (v2/v3 `packages`, v1 `dependencies`).
pub fn package_lock(text: &str) -> Option<PrismaVersion> {
    let json = serde_json::from_str::<serde_json::Value>(text).ok()?;
    for pkg in ["prisma", "@prisma/client"] {
        let key = format!("node_modules/{pkg}");
        if let Some(v) = json
            .get("packages")
            .and_then(|p| p.get(&key))
            .and_then(|p| p.get("version"))
            .and_then(|v| v.as_str())
        {
            return parse(v, "package-lock.json");
        }
        if let Some(v) = json
            .get("dependencies")
            .and_then(|p| p.get(pkg))
            .and_then(|p| p.get("version"))
            .and_then(|v| v.as_str())
        {
            return parse(v, "package-lock.json");
        }
    }
    None
}

/// The installed version in a `pnpm-lock.yaml`'s text.
pub fn pnpm_lock(text: &str) -> Option<PrismaVersion> {
    for pkg in ["prisma", "@prisma/client"] {
        // "  /prisma@7.4.1:" (v6), "  prisma@7.4.1:" (v9), "  '@prisma/client@7.4.1(...)':"
        for line in text.lines() {
            let l = line.trim().trim_start_matches('\'').trim_start_matches('/');
            if let Some(rest) = l.strip_prefix(&format!("{pkg}@"))
                && rest.starts_with(|c: char| c.is_ascii_digit())
            {
                // pnpm 9: "prisma@6.19.0:", peers "(…)", quoted keys "…':".
                let version = rest.split(['(', ':', '\'', '"']).next().unwrap_or(rest);
                return parse(version, "pnpm-lock.yaml");
            }
        }
    }
    None
}

/// The installed version in a `yarn.lock`'s text (classic and berry).
pub fn yarn_lock(text: &str) -> Option<PrismaVersion> {
    for pkg in ["prisma", "@prisma/client"] {
        let mut in_block = false;
        for line in text.lines() {
            if !line.starts_with(' ') {
                let head = line.trim_start_matches('"');
                in_block = head.starts_with(&format!("{pkg}@"));
            } else if in_block {
                let l = line.trim();
                if let Some(v) = l
                    .strip_prefix("version ")
                    .or_else(|| l.strip_prefix("version: "))
                {
                    return parse(v.trim_matches('"'), "yarn.lock");
                }
            }
        }
    }
    None
}

/// The installed version in a `bun.lock`'s text.
pub fn bun_lock(text: &str) -> Option<PrismaVersion> {
    for pkg in ["prisma", "@prisma/client"] {
        let needle = format!("\"{pkg}@");
        if let Some(i) = text.find(&needle) {
            let rest = &text[i + needle.len()..];
            if let Some(end) = rest.find('"') {
                return parse(&rest[..end], "bun.lock");
            }
        }
    }
    None
}

/// A regular file's text, read with the discovery size cap (a FIFO or a device reads as absent).
fn read_text(path: &std::path::Path) -> Option<String> {
    let bytes = super::tree::read_regular(path).ok()??;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_exact_versions() {
        let v = parse("^6.19.0", "t").unwrap_or_else(|| panic!("parse"));
        assert_eq!((v.major, v.minor), (6, 19));
        assert!(!v.splits_statements());
        let v = parse("7.4.1", "t").unwrap_or_else(|| panic!("parse"));
        assert!(v.splits_statements());
        let v = parse("~7.3", "t").unwrap_or_else(|| panic!("parse"));
        assert!(!v.splits_statements());
        assert!(parse("latest", "t").is_none());
    }

    #[test]
    fn lockfile_wins_over_package_json() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"devDependencies":{"prisma":"^7.0.0"}}"#,
        )
        .unwrap_or_default();
        std::fs::write(
            dir.path().join("package-lock.json"),
            r#"{"packages":{"node_modules/prisma":{"version":"7.4.2"}}}"#,
        )
        .unwrap_or_default();
        let v = detect(&[dir.path().to_path_buf()]).unwrap_or_else(|| panic!("detect"));
        assert_eq!((v.major, v.minor), (7, 4));
        assert_eq!(v.source, "package-lock.json");
    }

    #[test]
    fn yarn_and_pnpm_lockfiles() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("yarn.lock"),
            "\"prisma@^7.4.0\":\n  version \"7.5.0\"\n",
        )
        .unwrap_or_default();
        assert_eq!(
            detect(&[dir.path().to_path_buf()]).map(|v| v.minor),
            Some(5)
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("pnpm-lock.yaml"),
            "packages:\n\n  prisma@6.19.0:\n    resolution: x\n",
        )
        .unwrap_or_default();
        assert_eq!(
            detect(&[dir.path().to_path_buf()]).map(|v| v.minor),
            Some(19)
        );
    }

    #[test]
    fn pnpm_9_lockfile_version_is_read_without_the_trailing_colon() {
        let lock = "lockfileVersion: '9.0'\n\npackages:\n\n  prisma@6.19.0:\n    resolution: {integrity: x}\n\n  '@prisma/client@6.19.0(prisma@6.19.0)':\n    resolution: y\n";
        assert_eq!(pnpm_lock(lock).map(|v| v.raw), Some("6.19.0".to_string()));
        let quoted = "packages:\n  '@prisma/client@7.4.1(typescript@5.6.2)':\n    x: y\n";
        assert_eq!(pnpm_lock(quoted).map(|v| v.raw), Some("7.4.1".to_string()));
    }
}
