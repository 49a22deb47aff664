//! How deeply a script nests, measured by a flat scan before anything parses it: squawk's parser
//! and linter recurse once per level, so a pull request with `SELECT NOT NOT … true` or thousands
//! of nested parentheses would overflow the stack and abort ci-gate (no cleanup, no report).
//! Scripts deeper than [`MAX_NESTING`] are not parsed: they are sent whole, not split; the static
//! layer skips them and says so. PostgreSQL itself still judges them (it has its own depth limit).

/// The deepest nesting ci-gate parses. Real migrations stay far below (a few levels of
/// parentheses, CASE in CASE); the parser needs far more stack per level than this allows for
/// on a 2 MiB thread.
pub const MAX_NESTING: usize = 200;

/// Whether `script` nests deeper than [`MAX_NESTING`]: parentheses and brackets plus open `CASE`
/// blocks, or a run of consecutive `NOT`s, outside comments, strings, quoted identifiers and
/// dollar-quoted bodies.
pub fn too_deep(script: &str) -> bool {
    depth(script) > MAX_NESTING
}

/// The scan behind [`too_deep`].
pub fn depth(script: &str) -> usize {
    let b = script.as_bytes();
    let (mut i, mut brackets, mut cases, mut nots, mut max) = (0usize, 0usize, 0usize, 0usize, 0);
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = memchr(b'\n', b, i).unwrap_or(b.len());
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = find(b, b"*/", i + 2).map_or(b.len(), |e| e + 2);
                continue;
            }
            b'\'' | b'"' => {
                i = closing_quote(b, i);
                continue;
            }
            b'$' => {
                if let Some(tag_end) = dollar_tag(b, i) {
                    let tag = &b[i..=tag_end];
                    i = find(b, tag, tag_end + 1).map_or(b.len(), |e| e + tag.len());
                    continue;
                }
            }
            b'(' | b'[' => {
                brackets += 1;
                nots = 0;
            }
            b')' | b']' => brackets = brackets.saturating_sub(1),
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &script[start..i];
                if word.eq_ignore_ascii_case("NOT") {
                    nots += 1;
                } else {
                    nots = 0;
                    if word.eq_ignore_ascii_case("CASE") {
                        cases += 1;
                    } else if word.eq_ignore_ascii_case("END") {
                        cases = cases.saturating_sub(1);
                    }
                }
                max = max.max(brackets + cases).max(nots);
                continue;
            }
            _ => {}
        }
        max = max.max(brackets + cases).max(nots);
        i += 1;
    }
    max
}

fn memchr(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .iter()
        .position(|&x| x == needle)
        .map(|p| from + p)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The index after the quote that closes the one at `open` (doubled quotes escape).
fn closing_quote(b: &[u8], open: usize) -> usize {
    let q = b[open];
    let mut i = open + 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// The index of the `$` closing a dollar-quote tag that starts at `i` (`$$`, `$body$`).
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    (b.get(j) == Some(&b'$') && !b.get(i + 1).is_some_and(u8::is_ascii_digit)).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_migrations_are_shallow() {
        let sql = "CREATE TABLE \"T\" (\"id\" INT, CHECK (NOT (\"id\" < 0)));\n\
                   SELECT CASE WHEN a THEN (CASE WHEN b THEN 1 END) ELSE 2 END;\n\
                   DO $$ BEGIN IF NOT FOUND THEN RAISE '((((('; END IF; END $$;";
        assert!(depth(sql) < 6, "{}", depth(sql));
    }

    #[test]
    fn deep_nesting_of_every_kind_is_seen() {
        let nots = format!("SELECT {}true;", "NOT ".repeat(1000));
        let parens = format!("SELECT {}1{};", "(".repeat(1000), ")".repeat(1000));
        let arrays = format!("SELECT {}1{};", "ARRAY[".repeat(1000), "]".repeat(1000));
        let cases = format!(
            "SELECT {}1{};",
            "CASE WHEN true THEN ".repeat(1000),
            " END".repeat(1000)
        );
        for s in [nots, parens, arrays, cases] {
            assert!(too_deep(&s), "{}", &s[..40]);
        }
    }

    #[test]
    fn what_is_quoted_or_commented_does_not_count() {
        let s = format!(
            "SELECT '{}' , \"{}\", $x${}$x$; -- {}\n/* {} */",
            "(".repeat(1000),
            "(".repeat(1000),
            "(".repeat(1000),
            "(".repeat(1000),
            "(".repeat(1000)
        );
        assert!(!too_deep(&s), "{}", depth(&s));
    }
}
