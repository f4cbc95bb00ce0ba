//! Terminal safety: text that came from input or from a server is shown with
//! its control characters escaped, so a URL, a `Location` or an error
//! message can never move the cursor, recolour or retitle the terminal, or
//! reorder what is on screen (`docs/contract.md`, "Terminal safety").
//!
//! Escaped are the C0 controls (tab and newline included), DEL, the C1 controls (U+0080 to U+009F) and the bidirectional controls:
//! the embeddings and overrides U+202A to U+202E, the isolates U+2066 to
//! U+2069, the marks U+200E, U+200F and U+061C. They are shown as `\t`,
//! `\n`, `\r`, `\x1b` (other C0 and DEL) or `\u{202e}` (the rest). NDJSON
//! needs none of this: JSON escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` as one field of a one-line record (a result line, a template value,
/// a one-line message): every unsafe character escaped, tab and newline
/// too, so the record stays one line with its columns intact.
pub fn for_field(s: &str) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) || matches!(c, '\t' | '\n');
    let Some(first) = s.find(needs) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !needs(c) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\t' => out.write_str("\\t"),
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\0'..='\x1f' | '\x7f' => write!(out, "\\x{:02x}", u32::from(c)),
            _ => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

/// Appends `s` to `out` escaped as by [`for_field`].
pub fn push_field(out: &mut String, s: &str) {
    out.push_str(&for_field(s));
}

/// Escapes, in place, what was appended to `out` from byte `start` on, as
/// by [`for_field`].
pub fn field_from(out: &mut String, start: usize) {
    if let Cow::Owned(escaped) = for_field(&out[start..]) {
        out.truncate(start);
        out.push_str(&escaped);
    }
}

/// `s` with every control character (C0 with tab and newline, DEL, C1) and
/// bidirectional formatting character written as `\u{..}`, so a message
/// that quotes a URL stays one harmless line (redirect targets, proxies).
pub fn all_as_unicode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_bidi_control(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// The characters that reorder text (Unicode's Bidi_Control).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` must never reach a terminal raw (tab and newline aside).
fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x08'
            | '\x0b'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in ["", "http://h/caf\u{e9}?q=1#x", "\u{1F600} \\x1b"] {
            assert!(matches!(for_field(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
        assert!(matches!(for_field("http://h/a b"), Cow::Borrowed(_)));
    }

    #[test]
    fn all_as_unicode_writes_every_control_as_a_code_point() {
        assert_eq!(
            all_as_unicode("a\u{202e}b\u{2066}c\u{85}d\u{7f}e\tf\n"),
            "a\\u{202e}b\\u{2066}c\\u{85}d\\u{7f}e\\u{9}f\\u{a}"
        );
    }

    #[test]
    fn c0_del_and_c1_are_escaped() {
        assert_eq!(for_field("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(
            for_field("\0\x07\x08\x0b\x0c\r\x1f"),
            "\\x00\\x07\\x08\\x0b\\x0c\\r\\x1f"
        );
        assert_eq!(for_field("x\x7fy"), "x\\x7fy");
        assert_eq!(
            for_field("\u{80}\u{85}\u{9b}\u{9f}"),
            "\\u{80}\\u{85}\\u{9b}\\u{9f}"
        );
        // Just outside the C1 range: printable.
        assert_eq!(for_field("\u{a0}\u{e9}"), "\u{a0}\u{e9}");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(for_field("abc\u{202e}fed"), "abc\\u{202e}fed");
        for c in [
            '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let s = c.to_string();
            assert_eq!(for_field(&s), format!("\\u{{{:x}}}", u32::from(c)));
        }
        // Zero-width joiners and the like are not controls.
        assert_eq!(for_field("a\u{200d}b"), "a\u{200d}b");
    }

    #[test]
    fn one_line_fields_escape_tab_and_newline_too() {
        assert_eq!(for_field("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        let mut out = String::from("x=");
        push_field(&mut out, "1\n2");
        assert_eq!(out, "x=1\\n2");
        let mut out = String::from("keep\t");
        let start = out.len();
        out.push_str("v\x1b\t");
        field_from(&mut out, start);
        assert_eq!(out, "keep\tv\\x1b\\t");
    }

    #[test]
    fn the_result_never_holds_an_unsafe_character() {
        let all: String = (0..=0x2070u32).filter_map(char::from_u32).collect();
        let escaped = for_field(&all);
        assert!(
            !escaped
                .chars()
                .any(|c| is_unsafe(c) || c == '\t' || c == '\n')
        );
    }
}
