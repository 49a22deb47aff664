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

/// Split `script` into statements; `None` if it does not parse cleanly.
pub fn split(script: &str) -> Option<Vec<Statement>> {
    let parse = SourceFile::parse(script);
    if !parse.errors().is_empty() {
        return None;
    }
    let file = parse.tree();
    let mut out = Vec::new();
    for stmt in file.stmts() {
        let node = stmt.syntax();
        // Skip leading trivia (comments, whitespace) that the node may own.
        let mut start = None;
        let mut end = usize::from(node.text_range().end());
        for tok in significant_tokens(node) {
            start.get_or_insert(usize::from(tok.text_range().start()));
            end = usize::from(tok.text_range().end());
        }
        let Some(start) = start else { continue };
        let text = &script[start..end];
        let trimmed = text.trim_end_matches(';').trim_end();
        // A lone `;` is an empty statement: nothing to send.
        if trimmed.is_empty() {
            continue;
        }
        out.push(Statement {
            start,
            end: start + trimmed.len(),
        });
    }
    Some(out)
}

/// The tokens of `node` other than whitespace and comments: the statement's own text.
pub fn significant_tokens(
    node: &squawk_syntax::SyntaxNode,
) -> impl Iterator<Item = squawk_syntax::SyntaxToken> + '_ {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !matches!(t.kind(), SyntaxKind::WHITESPACE | SyntaxKind::COMMENT))
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

/// Whether a statement is a transaction-control statement (`BEGIN`, `COMMIT`, …).
pub fn is_transaction_control(stmt: &str) -> bool {
    let first = stmt
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches(';')
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "START" | "ABORT"
    )
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
    }
}
