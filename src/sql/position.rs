//! Positions in SQL text: byte offsets to 1-based line and column (in characters), and
//! PostgreSQL's character positions to byte offsets. Every finding, allow directive and error
//! location in ci-gate is computed here, so they all agree.

/// Line starts of a text, to turn many byte offsets into line and column without rescanning the
/// text for each one.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of each line's start; `starts[0]` is 0.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset. An offset past the end counts as
    /// the end; one inside a multi-byte character as that character's start.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = self.text;
        let mut offset = offset.min(text.len());
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        // `starts[0]` is 0, so `line` ≥ 1.
        let line = self.starts.partition_point(|&s| s <= offset);
        let column = text[self.starts[line - 1]..offset].chars().count() + 1;
        (line, column)
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`. For many offsets in one
/// text, build a [`LineIndex`] once.
pub fn line_col(text: &str, byte_offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(byte_offset)
}

/// Byte offset of the 1-based character position `pos` in `text` (as PostgreSQL reports error
/// positions: characters, not bytes).
pub fn char_pos_to_byte(text: &str, pos: usize) -> usize {
    text.char_indices()
        .nth(pos.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "-- é\nSELECT ü, x;";
        let x = text.find('x').unwrap_or(0);
        assert_eq!(line_col(text, x), (2, 11));
        assert_eq!(char_pos_to_byte(text, 1), 0);
        // 'x' is the 16th character.
        assert_eq!(char_pos_to_byte(text, 16), x);
    }

    #[test]
    fn line_col_handles_bom_crlf_and_offsets_out_of_range() {
        let text = "\u{feff}ab\r\né\n\n-- ü\nxyz";
        // The previous implementation, a scan of the text before the offset.
        let scan = |offset: usize| {
            let mut offset = offset.min(text.len());
            while offset > 0 && !text.is_char_boundary(offset) {
                offset -= 1;
            }
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            (line, before[line_start..].chars().count() + 1)
        };
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(index.line_col(offset), scan(offset), "offset {offset}");
            assert_eq!(line_col(text, offset), scan(offset), "offset {offset}");
        }
    }
}
