//! Oracles for the parsers of untrusted input, shared by the property tests
//! (`tests/parsers_prop.rs`) and the fuzz targets (`fuzz/`, which include this file by path): each
//! `check_*` feeds one parser and panics when a property does not hold. A panic inside the parser
//! is a bug; so is a panic here.
//!
//! Inputs are the parsers' own: text for the config, SQL and lockfile readers; for Prisma
//! discovery, a byte string decoded by [`prisma_tree`] into an in-memory migrations directory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use ci_gate::check::squawk::{self, LintContext};
use ci_gate::check::{Finding, Source, allow, find_rule};
use ci_gate::config::{self, Config};
use ci_gate::discover::prisma_version::{self, PrismaVersion};
use ci_gate::discover::tree::{Entry, EntryKind, Tree};
use ci_gate::discover::{LayoutProblem, Migration, char_pos_to_byte, line_col, prisma};
use ci_gate::format::Format;
use ci_gate::sql::split;
use squawk_syntax::{SourceFile, SyntaxKind};

/// The migrations directory inside a [`MemTree`].
pub const DIR: &str = "m";

/// One node of a [`MemTree`].
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File(Vec<u8>),
    Symlink,
}

/// A directory tree held in memory, addressed like `FsTree` (relative, `/`-separated).
#[derive(Debug, Clone, Default)]
pub struct MemTree {
    nodes: BTreeMap<String, Node>,
}

impl MemTree {
    fn dir(&mut self, path: &str) {
        self.nodes.insert(path.to_string(), Node::Dir);
    }
    fn file(&mut self, path: &str, bytes: &[u8]) {
        self.nodes
            .insert(path.to_string(), Node::File(bytes.to_vec()));
    }
}

impl Tree for MemTree {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        let prefix = format!("{dir}/");
        Ok(self
            .nodes
            .iter()
            .filter_map(|(path, node)| {
                let name = path.strip_prefix(&prefix)?;
                (!name.contains('/')).then(|| Entry {
                    name: name.to_string(),
                    kind: match node {
                        Node::Dir => EntryKind::Dir,
                        Node::File(_) => EntryKind::File,
                        Node::Symlink => EntryKind::Symlink,
                    },
                })
            })
            .collect())
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match self.nodes.get(path) {
            Some(Node::File(b)) => Ok(Some(b.clone())),
            Some(Node::Dir) => Err(io::Error::other("is a directory")),
            _ => Ok(None),
        }
    }

    fn is_dir(&self, dir: &str) -> bool {
        matches!(self.nodes.get(dir), Some(Node::Dir))
    }

    fn display(&self, path: &str) -> PathBuf {
        Path::new("/nonexistent/ci-gate-mem-tree").join(path)
    }
}

/// Decode a byte string into a migrations directory [`DIR`]. Chunks are separated by NUL bytes:
/// the first is `migration_lock.toml` (absent when empty), then pairs of an entry name and its
/// content. A name starting with `~` is a symlink, one starting with `!` a plain file at the
/// root; any other name is a migration directory whose `migration.sql` is the content, or that
/// has no script when the content is the single byte 0x01. Names that cannot exist on disk
/// (empty, `.`, `..`, containing `/`) are skipped.
pub fn prisma_tree(data: &[u8]) -> MemTree {
    let mut tree = MemTree::default();
    tree.dir(DIR);
    let mut chunks = data.split(|b| *b == 0);
    if let Some(lock) = chunks.next().filter(|l| !l.is_empty()) {
        tree.file(&format!("{DIR}/{}", prisma::LOCK_FILE), lock);
    }
    while let Some(name) = chunks.next() {
        let content = chunks.next();
        let name = String::from_utf8_lossy(name);
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let path = format!("{DIR}/{name}");
        if name.starts_with('~') {
            tree.nodes.insert(path, Node::Symlink);
        } else if name.starts_with('!') {
            tree.file(&path, content.unwrap_or_default());
        } else {
            tree.dir(&path);
            match content {
                Some([1]) => {}
                c => tree.file(&format!("{path}/{}", prisma::SCRIPT), c.unwrap_or_default()),
            }
        }
    }
    tree
}

/// Encode a migrations directory the way [`prisma_tree`] decodes it (for seeds and tests).
pub fn encode_prisma_tree(lock: Option<&[u8]>, migrations: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut out = lock.unwrap_or_default().to_vec();
    for (name, script) in migrations {
        out.push(0);
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(script.unwrap_or(&[1]));
    }
    out
}

/// Number of lines as `line_col` counts them (a trailing newline starts one more).
fn line_count(text: &str) -> usize {
    text.matches('\n').count() + 1
}

/// The byte offset of a 1-based line and character column, if it lies in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let line_start = if line == 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2)?.0 + 1
    };
    let rest = &text[line_start..];
    if column == rest.chars().count() + 1 {
        return Some(text.len());
    }
    rest.char_indices()
        .nth(column - 1)
        .map(|(i, _)| line_start + i)
}

/// A 1-based line:column must name a character of `text` (or its end).
fn assert_points_inside(text: &str, line: usize, column: usize, what: &str) -> usize {
    assert!(
        line >= 1 && column >= 1,
        "{what}: {line}:{column} is not 1-based"
    );
    offset_of(text, line, column)
        .unwrap_or_else(|| panic!("{what}: {line}:{column} lies outside the input"))
}

/// A migration with `text` as its script.
pub fn migration(text: &str) -> Migration {
    Migration {
        name: "1_fuzz".into(),
        path: format!("{DIR}/1_fuzz/{}", prisma::SCRIPT),
        bytes: text.as_bytes().to_vec(),
        text: text.into(),
        checksum: prisma::checksum(text.as_bytes()),
    }
}

/// `.ci-gate.yml`: no panic; what parses has only known keys and a usable statement timeout;
/// an error's line lies in the file.
pub fn check_config(text: &str) {
    const TOP: &[&str] = &[
        "format",
        "prisma-version",
        "migrations",
        "base",
        "postgres",
        "extensions",
        "roles",
        "seed",
        "rules",
        "fail-on",
        "comment",
        "statement-timeout",
        "superuser",
        "cache-dir",
    ];
    const POSTGRES: &[&str] = &["provider", "version", "image", "url", "bin"];
    match Config::parse(text, Path::new(config::FILE_NAME)) {
        Ok(c) => {
            if let Ok(serde_yaml::Value::Mapping(map)) = serde_yaml::from_str(text) {
                for (k, v) in &map {
                    let key = k.as_str().unwrap_or_else(|| panic!("non-string key {k:?}"));
                    assert!(TOP.contains(&key), "unknown key `{key}` accepted");
                    if let (Some("postgres"), serde_yaml::Value::Mapping(pg)) = (k.as_str(), v) {
                        for k in pg.keys() {
                            let key = k.as_str().unwrap_or_default();
                            assert!(POSTGRES.contains(&key), "unknown postgres key `{key}`");
                        }
                    }
                }
            }
            for id in c.rules.keys() {
                assert!(allow::is_known_rule(id), "unknown rule `{id}` accepted");
            }
            if let Some(t) = &c.statement_timeout {
                let d = t.parse().unwrap_or_else(|| panic!("{t:?} accepted"));
                assert!(d <= config::MAX_STATEMENT_TIMEOUT, "{t:?} accepted");
            }
            if let Some(v) = &c.prisma_version {
                let _ = prisma_version::parse(v, "config");
            }
        }
        Err(e) => {
            if let Some(line) = e.line {
                assert!(
                    (1..=line_count(text) + 1).contains(&line),
                    "error line {line} outside the file: {e}"
                );
            }
            assert!(!e.to_string().is_empty() && !e.hint.is_empty());
        }
    }
    let _ = config::parse_duration(text);
}

/// `migration_lock.toml`: the provider comes from the line it names, which starts with
/// `provider`.
pub fn check_lock_provider(text: &str) {
    if let Some((line, provider)) = prisma::lock_provider(text) {
        let l = text
            .lines()
            .nth(line.wrapping_sub(1))
            .unwrap_or_else(|| panic!("line {line} outside the lock file"));
        assert!(l.starts_with("provider") && l.contains(provider.as_str()));
    }
}

/// Prisma discovery over [`prisma_tree`]`(data)`: no panic; migrations in byte order with
/// unique names; text, checksum and the checksum match as Prisma computes them; layout problems
/// located inside their file.
pub fn check_prisma_discover(data: &[u8]) {
    let lock = data.split(|b| *b == 0).next().unwrap_or_default();
    check_lock_provider(&String::from_utf8_lossy(lock));
    let tree = prisma_tree(data);
    let format = prisma::Prisma::default();
    let set = match format.discover(&tree, DIR) {
        Ok(set) => set,
        Err(e) => {
            let _ = (e.to_string(), e.hint());
            return;
        }
    };
    for pair in set.migrations.windows(2) {
        assert!(
            pair[0].name.as_bytes() < pair[1].name.as_bytes(),
            "{} before {}",
            pair[0].name,
            pair[1].name
        );
    }
    for m in &set.migrations {
        assert_eq!(m.text, String::from_utf8_lossy(&m.bytes));
        assert_eq!(m.checksum, format.checksum(&m.bytes));
        assert!(
            format.checksum_matches(&m.checksum, &m.bytes),
            "{}: its own checksum does not match",
            m.name
        );
        // a stored value of any shape is compared, never a panic
        let _ = prisma::checksum_matches(&String::from_utf8_lossy(lock), &m.bytes);
    }
    for p in &set.problems {
        if let LayoutProblem::NotUtf8 {
            file,
            line,
            column,
            byte_offset,
        } = p
        {
            let m = set
                .migrations
                .iter()
                .find(|m| &m.path == file)
                .unwrap_or_else(|| panic!("NotUtf8 for {file}, not a migration"));
            assert!(std::str::from_utf8(&m.bytes).is_err());
            let valid = String::from_utf8_lossy(&m.bytes[..*byte_offset]);
            assert_eq!(offset_of(&valid, *line, *column), Some(valid.len()));
        }
    }
}

/// Statement splitting: statements are in order, inside the text, trimmed, on character
/// boundaries; their line:column points at their first character; every other token is a `;`.
pub fn check_split(text: &str) {
    if let Some(stmts) = split::split(text) {
        let mut prev_end = 0;
        for s in &stmts {
            assert!(
                prev_end <= s.start && s.start < s.end && s.end <= text.len(),
                "{s:?} after {prev_end} in {} bytes",
                text.len()
            );
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            let t = s.text(text);
            assert_eq!(t, t.trim(), "statement text is not trimmed");
            let (line, column) = line_col(text, s.start);
            let at = assert_points_inside(text, line, column, "statement start");
            assert_eq!(at, s.start, "{line}:{column} is not where {s:?} starts");
            assert_eq!(split::statement_at(&stmts, s.start), Some(s));
            prev_end = s.end;
        }
        let parse = SourceFile::parse(text);
        for tok in parse
            .syntax_node()
            .descendants_with_tokens()
            .filter_map(|e| e.into_token())
        {
            if matches!(
                tok.kind(),
                SyntaxKind::WHITESPACE | SyntaxKind::COMMENT | SyntaxKind::SEMICOLON
            ) {
                continue;
            }
            let (a, b) = (
                usize::from(tok.text_range().start()),
                usize::from(tok.text_range().end()),
            );
            assert!(
                stmts.iter().any(|s| s.start <= a && b <= s.end),
                "token {:?} {:?} at {a}..{b} is in no statement",
                tok.kind(),
                tok.text()
            );
        }
    }
    for offset in [0, text.len() / 2, text.len(), text.len() + 1] {
        let (line, column) = line_col(text, offset);
        assert_points_inside(text, line, column, "line_col");
    }
    for pos in [0, 1, text.chars().count(), text.len() + 2] {
        assert!(text.is_char_boundary(char_pos_to_byte(text, pos)));
    }
    assert!(split::excerpt(text, 80).chars().count() <= 80);
    let _ = (
        split::is_non_transactional(text),
        split::is_transaction_control(text),
    );
}

/// Allow directives: each is located at its comment, covers a statement inside the text, and
/// applying them (with findings on the lines they cover) reports problems inside the file.
pub fn check_allow(text: &str) {
    let m = migration(text);
    let directives = allow::parse(&m);
    let mut findings = Vec::new();
    for d in &directives {
        let at = assert_points_inside(text, d.line, d.column, "directive");
        assert!(
            text[at..].starts_with(&d.text),
            "{}:{} does not start the comment {:?}",
            d.line,
            d.column,
            d.text
        );
        assert!(d.text.to_ascii_lowercase().contains("ci-gate"));
        if let allow::Scope::NextStatement { start, end } = d.scope {
            assert!(start <= end && end <= text.len());
            assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
        }
        for r in &d.rules {
            if let Some(rule) = find_rule(r) {
                for line in [d.line, d.line + 1] {
                    findings.push(
                        Finding::new(rule, Source::Static, "fuzz")
                            .file(&m.path)
                            .at(line, 1),
                    );
                }
            }
        }
    }
    for p in allow::apply(&mut findings, &[&m]) {
        let line = p.line.unwrap_or(1);
        assert!(line <= line_count(text), "problem at line {line}");
    }
}

/// Prisma version sources. `data[0]` picks the reader: the version string itself,
/// `package.json`, `package-lock.json`, `pnpm-lock.yaml`, `yarn.lock`, `bun.lock`.
pub fn check_prisma_version(data: &[u8]) {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    check_prisma_version_source(*kind, text);
}

/// The readers [`check_prisma_version`] picks from.
pub const VERSION_SOURCES: [fn(&str) -> Option<PrismaVersion>; 6] = [
    |t| prisma_version::parse(t, "fuzz"),
    prisma_version::package_json,
    prisma_version::package_lock,
    prisma_version::pnpm_lock,
    prisma_version::yarn_lock,
    prisma_version::bun_lock,
];

pub fn check_prisma_version_source(kind: u8, text: &str) {
    let i = usize::from(kind) % VERSION_SOURCES.len();
    let read = VERSION_SOURCES[i];
    if let Some(v) = read(text) {
        assert!(
            v.raw.contains(&v.major.to_string()),
            "{v:?} from a version without its major"
        );
        assert_eq!(v.splits_statements(), (v.major, v.minor) >= (7, 4));
        if i == 0 {
            assert_eq!(v.raw, text);
        }
    }
}

/// squawk's lint over arbitrary SQL: no panic, findings and syntax errors inside the file.
pub fn check_squawk(text: &str) {
    let m = migration(text);
    let out = squawk::lint(&m, &LintContext::default(), &squawk::RuleLevels::new());
    for f in &out.findings {
        if let (Some(line), Some(column)) = (f.line, f.column) {
            assert_points_inside(text, line, column, &f.rule);
        }
    }
    for e in &out.syntax_errors {
        assert_points_inside(text, e.line, e.column, "syntax error");
    }
}
