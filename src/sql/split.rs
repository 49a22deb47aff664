//! Splits a migration script into statements with exact byte ranges, using squawk-syntax's
//! PostgreSQL parser (dollar quotes, nested comments, `E''` strings are handled by its lexer).
//!
//! [`split`] returns `None` when the parser reports any error: then the script cannot be split
//! exactly, and callers fall back to treating the whole file as one unit.

use squawk_syntax::ast::AstNode;
use squawk_syntax::{SourceFile, SyntaxKind};

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Byte range of the statement text in the script (without its trailing `;`, without
    /// leading comments and whitespace).
    pub start: usize,
    pub end: usize,
}

impl Statement {
    pub fn text<'a>(&self, script: &'a str) -> &'a str {
        &script[self.start..self.end]
    }
}

/// Split `script` into statements; `None` if it does not parse cleanly (or nests too deeply to
/// parse safely: [`super::depth`]).
pub fn split(script: &str) -> Option<Vec<Statement>> {
    if super::depth::too_deep(script) {
        return None; // sent whole: the server judges it, the parser never sees it
    }
    let parse = SourceFile::parse(script);
    if !parse.errors().is_empty() {
        return None;
    }
    Some(statements(&parse, script))
}

/// The statements of a parsed script, also for scripts the parser only partly understands
/// (statements it could not delimit are missing or merged: use [`split`] when that matters).
pub fn statements(parse: &squawk_syntax::Parse<SourceFile>, script: &str) -> Vec<Statement> {
    parse
        .tree()
        .stmts()
        .filter_map(|stmt| bounds(stmt.syntax(), script))
        .collect()
}

/// The bounds of one statement node: from its first to its last significant token (leading
/// comments and whitespace the node may own left out), without the trailing `;`. `None` when the
/// node holds only comments and whitespace. Walks in from both ends, so it costs the trivia at
/// the edges, not the statement's length.
pub fn bounds(node: &squawk_syntax::SyntaxNode, script: &str) -> Option<Statement> {
    let range = node.text_range();
    let mut first = node.first_token();
    while let Some(t) = first.as_ref().filter(|t| is_trivia(t)) {
        first = t
            .next_token()
            .filter(|n| n.text_range().end() <= range.end());
    }
    let start = usize::from(first?.text_range().start());
    let mut last = node.last_token();
    while let Some(t) = last.as_ref().filter(|t| is_trivia(t)) {
        last = t
            .prev_token()
            .filter(|p| p.text_range().start() >= range.start());
    }
    let end = usize::from(last.map_or(range.end(), |t| t.text_range().end()));
    let trimmed = script.get(start..end)?.trim_end_matches(';').trim_end();
    // A lone `;` is an empty statement: nothing to send, nothing for a directive to cover.
    if trimmed.is_empty() {
        return None;
    }
    Some(Statement {
        start,
        end: start + trimmed.len(),
    })
}

fn is_trivia(t: &squawk_syntax::SyntaxToken) -> bool {
    matches!(t.kind(), SyntaxKind::WHITESPACE | SyntaxKind::COMMENT)
}

/// The comments of a parsed script (`--` and `/* */`), in file order. Found by the lexer, so text
/// inside strings and `$$` bodies is never a comment.
pub fn comments(
    parse: &squawk_syntax::Parse<SourceFile>,
) -> impl Iterator<Item = squawk_syntax::SyntaxToken> + use<> {
    parse
        .syntax_node()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| t.kind() == SyntaxKind::COMMENT)
}

/// The tokens of `node` other than whitespace and comments: the statement's own text.
pub fn significant_tokens(
    node: &squawk_syntax::SyntaxNode,
) -> impl Iterator<Item = squawk_syntax::SyntaxToken> + '_ {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !is_trivia(t))
}

/// The statement containing byte `offset`, or the next one after it.
pub fn statement_at(statements: &[Statement], offset: usize) -> Option<&Statement> {
    statements
        .iter()
        .find(|s| offset < s.end.max(s.start + 1))
        .or(statements.last())
}

/// A one-line excerpt of a statement, at most `max` characters.
pub fn excerpt(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Whether a statement refuses to run inside a transaction block (SQLSTATE 25001).
pub fn is_non_transactional(stmt: &str) -> bool {
    let words: Vec<String> = stmt
        .split_whitespace()
        .take(6)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => true,
        ["DROP", "INDEX", "CONCURRENTLY", ..] => true,
        ["REINDEX", ..] => {
            w.contains(&"CONCURRENTLY") || w.iter().any(|x| x.starts_with("(CONCURRENTLY"))
        }
        ["VACUUM", ..] | ["ALTER", "SYSTEM", ..] => true,
        ["CREATE", "DATABASE", ..] | ["DROP", "DATABASE", ..] => true,
        ["CREATE", "TABLESPACE", ..] | ["DROP", "TABLESPACE", ..] => true,
        ["DETACH", ..] => false,
        _ => {
            stmt.to_ascii_uppercase().contains("DETACH PARTITION")
                && stmt.to_ascii_uppercase().contains("CONCURRENTLY")
        }
    }
}

/// A transaction-control statement: what it does to the transaction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxControl {
    /// `BEGIN`, `START TRANSACTION`: opens a block.
    Begin,
    /// `COMMIT`, `END`, `ROLLBACK`, `ABORT`: closes it.
    End,
}

/// Whether a statement opens or closes a transaction block, from its first word (any case).
pub fn transaction_control(stmt: &str) -> Option<TxControl> {
    let first = stmt
        .trim_start()
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "START" => Some(TxControl::Begin),
        "COMMIT" | "END" | "ROLLBACK" | "ABORT" => Some(TxControl::End),
        _ => None,
    }
}

/// Where the statement after a leading `BEGIN` (or `START TRANSACTION`) starts in `text`: the
/// trace sends a `BEGIN` together with its next statement, and points at that one. 0 when `text`
/// does not start with one (or has nothing after it).
pub fn after_begin(text: &str) -> usize {
    if transaction_control(text) != Some(TxControl::Begin) {
        return 0;
    }
    match split(text).as_deref() {
        Some([_, next, ..]) => next.start,
        _ => 0,
    }
}

/// Whether a statement is a transaction-control statement (`BEGIN`, `COMMIT`, …).
pub fn is_transaction_control(stmt: &str) -> bool {
    transaction_control(stmt).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<String> {
        split(script)
            .unwrap_or_else(|| panic!("split failed"))
            .iter()
            .map(|s| s.text(script).to_string())
            .collect()
    }

    #[test]
    fn splits_prisma_style_script_without_comments() {
        let script = "-- CreateTable\nCREATE TABLE \"A\" (\n    \"id\" TEXT NOT NULL\n);\n\n-- CreateIndex\nCREATE INDEX \"A_id_idx\" ON \"A\"(\"id\");\n";
        assert_eq!(
            texts(script),
            vec![
                "CREATE TABLE \"A\" (\n    \"id\" TEXT NOT NULL\n)",
                "CREATE INDEX \"A_id_idx\" ON \"A\"(\"id\")"
            ]
        );
    }

    #[test]
    fn dollar_quoted_bodies_stay_whole() {
        let script = "DO $$ BEGIN RAISE NOTICE 'a;b'; END $$;\nSELECT 1;";
        let t = texts(script);
        assert_eq!(t.len(), 2);
        assert!(t[0].ends_with("END $$"));
    }

    #[test]
    fn bounds_leave_out_surrounding_comments_and_the_semicolon() {
        let script = "-- a\nSELECT 1 /* b */;\n/* only a comment */";
        let parse = SourceFile::parse(script);
        let all = statements(&parse, script);
        let texts: Vec<&str> = all.iter().map(|s| s.text(script)).collect();
        // The `;` belongs to the statement, so a comment before it stays inside.
        assert_eq!(texts, ["SELECT 1 /* b */"]);
    }

    #[test]
    fn empty_statements_are_not_statements() {
        // Found by the property tests: `;` used to split into one empty statement, sent as such.
        assert_eq!(texts(";"), Vec::<String>::new());
        assert_eq!(texts("SELECT 1;; ;\n;"), vec!["SELECT 1"]);
    }

    #[test]
    fn unparseable_scripts_are_not_split() {
        assert!(split("CREATE TABLE (;").is_none());
    }

    #[test]
    fn classifies_non_transactional_statements() {
        assert!(is_non_transactional(
            "CREATE INDEX CONCURRENTLY \"x\" ON \"t\"(\"a\")"
        ));
        assert!(is_non_transactional(
            "create unique index concurrently x on t(a)"
        ));
        assert!(is_non_transactional("DROP INDEX CONCURRENTLY x"));
        assert!(!is_non_transactional("CREATE INDEX x ON t(a)"));
        assert!(is_transaction_control("BEGIN"));
        assert!(is_transaction_control("COMMIT"));
        assert!(is_transaction_control("commit;"));
        assert_eq!(
            transaction_control("start transaction"),
            Some(TxControl::Begin)
        );
        assert_eq!(transaction_control("ROLLBACK"), Some(TxControl::End));
        assert!(!is_transaction_control("BEGIN_LOG"));
        assert!(!is_transaction_control("SELECT 1"));
    }
}
