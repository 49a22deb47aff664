//! Quoting for SQL text that ci-gate writes itself: identifiers and string literals, always
//! quoted, so a name from a migration or a catalog can never change the statement's meaning.

/// Double-quote an identifier unconditionally (`User` → `"User"`, `a"b` → `"a""b"`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal (`it's` → `'it''s'`).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_double_the_quote_character() {
        assert_eq!(quote_ident("User"), "\"User\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
