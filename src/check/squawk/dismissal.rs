//! What a file shows about its own squawk hits: its statements as words, grouped into
//! transaction blocks (the file's implicit one, or explicit `BEGIN … COMMIT`), and its
//! `squawk-ignore` comments. From these, `Analysis::dismissal` decides which hits the file
//! itself shows harmless (Prisma's enum swap, a default dropped and set again, a constraint
//! dropped and re-added under the same name, all in one transaction; `constraint-missing-not-valid`
//! repeating a more precise rule on the same constraint), and `Analysis::ignore_reason` which
//! `squawk-ignore` comment silenced a hit.

use std::cell::OnceCell;

use squawk_linter::{Rule as SquawkRule, Violation};
use squawk_syntax::ast::AstNode;
use squawk_syntax::{SourceFile, SyntaxKind};

use super::catalogue::canonical;
use crate::sql::position::LineIndex;
use crate::sql::split::{self, TxControl};

/// squawk's ignore comment (`squawk-ignore`, `squawk-ignore-file`).
pub(super) const IGNORE: &str = "squawk-ignore";

/// One statement as words: keywords upper-cased, identifiers unquoted (case kept) or
/// lower-cased when unquoted, `schema.name` reduced to `name`.
#[derive(Debug)]
struct Stmt {
    start: usize,
    end: usize,
    words: Vec<String>,
    /// Inside a transaction (the file's implicit one or an explicit BEGIN).
    in_tx: bool,
    /// Index of the transaction block, to compare statements.
    tx: usize,
}

/// What the file says, computed once from the parse tree.
pub(super) struct Analysis<'a> {
    pub(super) text: &'a str,
    stmts: Vec<Stmt>,
    /// (start, end, comment text) of each `squawk-ignore` comment.
    ignores: Vec<(usize, usize, String)>,
    /// Line starts, built on first use by [`Analysis::line_col`].
    lines: OnceCell<LineIndex<'a>>,
}

impl<'a> Analysis<'a> {
    /// `keep_words`: also keep each statement's words (only needed to dismiss findings).
    pub(super) fn new(
        parse: &squawk_syntax::Parse<SourceFile>,
        text: &'a str,
        assume_in_transaction: bool,
        keep_words: bool,
        has_ignores: bool,
    ) -> Self {
        let mut stmts = Vec::new();
        let mut in_tx = assume_in_transaction;
        let mut tx = 0;
        for stmt in parse.tree().stmts() {
            let node = stmt.syntax();
            let Some(bounds) = split::bounds(node, text) else {
                continue;
            };
            let words = if keep_words {
                stmt_words(node)
            } else {
                Vec::new()
            };
            let control = split::transaction_control(bounds.text(text));
            let is_begin = control == Some(TxControl::Begin);
            if is_begin && !in_tx {
                tx += 1;
            }
            if is_begin {
                in_tx = true;
            }
            stmts.push(Stmt {
                start: bounds.start,
                end: bounds.end,
                words,
                in_tx,
                tx,
            });
            if control == Some(TxControl::End) {
                // After COMMIT the rest of a one-message file runs in a new implicit transaction.
                in_tx = assume_in_transaction;
                tx += 1;
            }
        }
        let mut ignores = Vec::new();
        if has_ignores {
            for tok in split::comments(parse) {
                if tok.text().contains(IGNORE) {
                    let r = tok.text_range();
                    ignores.push((
                        usize::from(r.start()),
                        usize::from(r.end()),
                        tok.text().to_string(),
                    ));
                }
            }
        }
        Analysis {
            text,
            stmts,
            ignores,
            lines: OnceCell::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset ([`LineIndex`], built once per
    /// file and only when a finding needs it).
    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        self.lines
            .get_or_init(|| LineIndex::new(self.text))
            .line_col(offset)
    }

    /// The text of the statement containing byte `offset`.
    pub(super) fn statement_at(&self, offset: usize) -> Option<&'a str> {
        let s = &self.stmts[self.stmt_index(offset)?];
        Some(&self.text[s.start..s.end])
    }

    fn stmt_index(&self, offset: usize) -> Option<usize> {
        self.stmts
            .iter()
            .position(|s| s.start <= offset && offset < s.end.max(s.start + 1))
    }

    /// Why a violation is harmless given the rest of the file, if it is.
    pub(super) fn dismissal(&self, v: &Violation, all: &[Violation]) -> Option<String> {
        let start = usize::from(v.text_range.start());
        match v.code {
            SquawkRule::ConstraintMissingNotValid => {
                // squawk reports a foreign key, a UNIQUE constraint or a primary key twice: once
                // under its own rule, once here. Keep the precise one.
                let end = usize::from(v.text_range.end());
                all.iter()
                    .find(|o| {
                        matches!(
                            o.code,
                            SquawkRule::AddingForeignKeyConstraint
                                | SquawkRule::DisallowedUniqueConstraint
                                | SquawkRule::AddingSerialPrimaryKeyField
                        ) && usize::from(o.text_range.start()) >= start
                            && usize::from(o.text_range.end()) <= end
                    })
                    .map(|o| {
                        format!(
                            "the same constraint is reported as squawk/{}",
                            canonical(o.code)
                        )
                    })
            }
            SquawkRule::RenamingObject => {
                let i = self.stmt_index(start)?;
                let w = &self.stmts[i].words;
                let (from, to) = type_rename(w)?;
                self.type_swap_rename(i, from, to)
            }
            SquawkRule::BanDropType => {
                let i = self.stmt_index(start)?;
                let name = dropped_type(&self.stmts[i].words)?;
                self.type_swap_drop(i, name)
            }
            SquawkRule::BanDropDefault => {
                let i = self.stmt_index(start)?;
                let s = &self.stmts[i];
                if !s.in_tx {
                    return None;
                }
                let table = altered_table(&s.words)?;
                let cols = column_actions(&s.words, "DROP", "DEFAULT");
                if cols.is_empty() {
                    return None;
                }
                let later: Vec<&Stmt> = self.same_tx_after(i).collect();
                cols.iter()
                    .all(|c| {
                        later.iter().any(|l| {
                            altered_table(&l.words) == Some(table)
                                && column_actions(&l.words, "SET", "DEFAULT").contains(c)
                        })
                    })
                    .then(|| {
                        "the default is set again later in the same transaction, so no client sees the column without one".to_string()
                    })
            }
            SquawkRule::BanDropConstraint => {
                let i = self.stmt_index(start)?;
                let s = &self.stmts[i];
                if !s.in_tx {
                    return None;
                }
                let table = altered_table(&s.words)?;
                let dropped = named_after(&s.words, &["DROP", "CONSTRAINT"]);
                if dropped.is_empty() {
                    return None;
                }
                let readded = |name: &str| {
                    std::iter::once(s).chain(self.same_tx_after(i)).any(|l| {
                        altered_table(&l.words) == Some(table)
                            && named_after(&l.words, &["ADD", "CONSTRAINT"]).contains(&name)
                    })
                };
                dropped.iter().all(|d| readded(d)).then(|| {
                    "the constraint is added again under the same name in the same transaction (Prisma recreates a foreign key this way)".to_string()
                })
            }
            _ => None,
        }
    }

    fn same_tx_after(&self, i: usize) -> impl Iterator<Item = &Stmt> {
        let tx = self.stmts[i].tx;
        self.stmts[i + 1..]
            .iter()
            .take_while(move |s| s.tx == tx && s.in_tx)
    }

    fn same_tx(&self, i: usize) -> impl Iterator<Item = &Stmt> {
        let tx = self.stmts[i].tx;
        self.stmts.iter().filter(move |s| s.tx == tx && s.in_tx)
    }

    /// `ALTER TYPE from RENAME TO to` inside Prisma's enum swap: the type keeps its name in the
    /// end, so no client sees a rename.
    fn type_swap_rename(&self, i: usize, from: &str, to: &str) -> Option<String> {
        if !self.stmts[i].in_tx {
            return None;
        }
        let created = |n: &str| self.same_tx(i).any(|s| created_type(&s.words) == Some(n));
        let dropped = |n: &str| self.same_tx(i).any(|s| dropped_type(&s.words) == Some(n));
        let renamed_to = |n: &str| {
            self.same_tx(i)
                .any(|s| type_rename(&s.words).is_some_and(|(_, t)| t == n))
        };
        // `X_new` (created in this transaction) → `X`; or `X` → `X_old` (dropped later) while
        // something else becomes `X`.
        let ok = created(from) || (dropped(to) && renamed_to(from));
        ok.then(|| {
            format!(
                "part of an enum swap in one transaction (Prisma's `-- AlterEnum`): `{from}` is {}",
                if created(from) {
                    "created in the same transaction".to_string()
                } else {
                    format!("replaced by another type of the same name, and `{to}` dropped")
                }
            )
        })
    }

    /// `DROP TYPE X_old` after `ALTER TYPE X RENAME TO X_old` and a new `X`, in one transaction.
    fn type_swap_drop(&self, i: usize, name: &str) -> Option<String> {
        if !self.stmts[i].in_tx {
            return None;
        }
        let (from, _) = self
            .same_tx(i)
            .filter_map(|s| type_rename(&s.words))
            .find(|(_, to)| *to == name)?;
        let replaced = self
            .same_tx(i)
            .any(|s| type_rename(&s.words).is_some_and(|(_, t)| t == from));
        replaced.then(|| {
            format!("`{name}` is the old copy of `{from}` renamed in the same transaction (Prisma's `-- AlterEnum`); `{from}` still exists")
        })
    }

    /// The `squawk-ignore` comment that silenced `v`: the last one before it naming its rule (or
    /// all rules).
    pub(super) fn ignore_reason(&self, v: &Violation) -> String {
        let start = usize::from(v.text_range.start());
        let name = v.code.to_string();
        let canonical_name = canonical(v.code);
        let covers = |c: &str| {
            let body = c.trim_start_matches("--").trim_start_matches("/*");
            let body = body.trim_end_matches("*/").trim();
            let Some(rest) = body
                .strip_prefix("squawk-ignore-file")
                .or_else(|| body.strip_prefix(IGNORE))
            else {
                return false;
            };
            let names = rest.split("--").next().unwrap_or("");
            names.trim().is_empty()
                || names
                    .split(',')
                    .any(|n| n.trim() == name || n.trim() == canonical_name)
        };
        let comment = self
            .ignores
            .iter()
            .filter(|(s, _, c)| covers(c) && (*s < start || c.contains("squawk-ignore-file")))
            .max_by_key(|(s, _, c)| (*s < start && !c.contains("squawk-ignore-file"), *s));
        match comment {
            Some((s, _, c)) => {
                let (line, _) = self.line_col(*s);
                let body = c.trim_start_matches("--").trim();
                let reason = body.split_once("--").map(|(_, r)| r.trim().to_string());
                match reason.filter(|r| !r.is_empty()) {
                    Some(r) => format!("squawk-ignore comment on line {line}: {r}"),
                    None => format!("squawk-ignore comment on line {line} (no reason given)"),
                }
            }
            None => "a squawk-ignore comment".to_string(),
        }
    }
}

/// A statement's words: keywords upper-cased, quoted identifiers unquoted, unquoted ones
/// lower-cased, `schema.name` reduced to `name`, no `;`.
fn stmt_words(node: &squawk_syntax::SyntaxNode) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut join_next = false;
    for tok in split::significant_tokens(node) {
        let kind = tok.kind();
        let t = tok.text();
        if t == ";" {
            continue;
        }
        if t == "." {
            join_next = true;
            continue;
        }
        let word = if let Some(q) = t.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
            q.replace("\"\"", "\"")
        } else if kind == SyntaxKind::IDENT {
            t.to_lowercase()
        } else {
            t.to_uppercase()
        };
        if join_next && let Some(last) = words.last_mut() {
            *last = word;
        } else {
            words.push(word);
        }
        join_next = false;
    }
    words
}

fn word_is(w: &[String], i: usize, s: &str) -> bool {
    w.get(i).is_some_and(|x| x == s)
}

/// `ALTER TYPE a RENAME TO b` → (a, b).
fn type_rename(w: &[String]) -> Option<(&str, &str)> {
    (word_is(w, 0, "ALTER")
        && word_is(w, 1, "TYPE")
        && word_is(w, 3, "RENAME")
        && word_is(w, 4, "TO")
        && w.len() == 6)
        .then(|| (w[2].as_str(), w[5].as_str()))
}

/// `DROP TYPE [IF EXISTS] a` → a (a single type).
fn dropped_type(w: &[String]) -> Option<&str> {
    if !(word_is(w, 0, "DROP") && word_is(w, 1, "TYPE")) {
        return None;
    }
    let i = if word_is(w, 2, "IF") { 4 } else { 2 };
    let name = w.get(i)?;
    // A list (`DROP TYPE a, b`) is not Prisma's pattern.
    (!w[i + 1..].iter().any(|x| x == ",")).then_some(name.as_str())
}

/// `CREATE TYPE a …` → a.
fn created_type(w: &[String]) -> Option<&str> {
    (word_is(w, 0, "CREATE") && word_is(w, 1, "TYPE")).then(|| w.get(2).map(String::as_str))?
}

/// `ALTER TABLE [IF EXISTS] [ONLY] t …` → t.
fn altered_table(w: &[String]) -> Option<&str> {
    if !(word_is(w, 0, "ALTER") && word_is(w, 1, "TABLE")) {
        return None;
    }
    let mut i = 2;
    if word_is(w, i, "IF") {
        i += 2;
    }
    if word_is(w, i, "ONLY") {
        i += 1;
    }
    w.get(i).map(String::as_str)
}

/// Columns in `ALTER [COLUMN] c <verb> <what>` actions.
fn column_actions<'w>(w: &'w [String], verb: &str, what: &str) -> Vec<&'w str> {
    let mut out = Vec::new();
    for i in 0..w.len() {
        if w[i] == verb && word_is(w, i + 1, what) && i >= 2 {
            let c = &w[i - 1];
            let before = &w[i - 2];
            if before == "COLUMN" || before == "ALTER" {
                out.push(c.as_str());
            }
        }
    }
    out
}

/// Names following `keywords` (skipping `IF EXISTS`), e.g. `DROP CONSTRAINT x`.
fn named_after<'w>(w: &'w [String], keywords: &[&str]) -> Vec<&'w str> {
    let mut out = Vec::new();
    for i in 0..w.len() {
        if keywords
            .iter()
            .enumerate()
            .all(|(k, kw)| word_is(w, i + k, kw))
        {
            let mut j = i + keywords.len();
            if word_is(w, j, "IF") {
                j += 2;
            }
            if let Some(n) = w.get(j) {
                out.push(n.as_str());
            }
        }
    }
    out
}
