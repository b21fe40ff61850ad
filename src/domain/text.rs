//! Rules for text that tessera stores and shows to people: names users see on
//! consent pages and URIs stored for display. Control characters never reach
//! the database (PostgreSQL refuses NUL in text; SQLite keeps it and pages
//! would show it); invisible and text-direction characters cannot disguise a
//! name; a word may not mix the Latin, Greek and Cyrillic alphabets, the
//! classic way to imitate another app's name with look-alike letters.

/// Why a piece of display text was refused. The messages are fixed strings:
/// they never repeat what was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not contain control characters")]
    Control,
    #[error("must not contain invisible or text-direction characters")]
    Invisible,
    #[error("must not mix letters of the Latin, Greek and Cyrillic alphabets in one word")]
    MixedScript,
    #[error("must use ordinary letters, not fullwidth or mathematical ones")]
    StyledLetters,
}

/// Characters that display as nothing, or change how the text around them
/// displays: zero-width spaces and joiners, bidi controls, soft hyphen,
/// word joiners, the byte-order mark, and blank fillers that render as
/// empty space (Hangul fillers, Braille blank).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}'
        | '\u{034f}'
        | '\u{061c}'
        | '\u{115f}'
        | '\u{1160}'
        | '\u{17b4}'
        | '\u{17b5}'
        | '\u{180b}'..='\u{180f}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{2800}'
        | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff0}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e0fff}'
    )
}

/// Letters drawn in another style that read as plain Latin or digits:
/// fullwidth forms (U+FF01..U+FF5E), mathematical alphanumerics
/// (U+1D400..U+1D7FF), enclosed and squared letters. "Ｇｏｏｇｌｅ" passes no
/// script check and imitates "Google" perfectly.
pub fn is_styled_letter(c: char) -> bool {
    matches!(c,
        '\u{ff01}'..='\u{ff5e}'
        | '\u{1d400}'..='\u{1d7ff}'
        | '\u{2460}'..='\u{24ff}'
        | '\u{1f100}'..='\u{1f1ff}'
        // Combining overlays that strike a letter through ("G̸oogle") and
        // the combining marks for symbols (enclosing circles, keycaps).
        | '\u{0334}'..='\u{0338}'
        | '\u{20d0}'..='\u{20ff}'
    )
}

/// Whether `text` holds any control character (C0, DEL, C1; NUL included).
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

fn script_of(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    match c {
        'a'..='z' | 'A'..='Z' => Some(Script::Latin),
        // Latin-1 letters, Latin Extended-A/B, IPA, Latin Extended Additional.
        '\u{00c0}'..='\u{024f}' | '\u{0250}'..='\u{02af}' | '\u{1e00}'..='\u{1eff}' => {
            Some(Script::Latin)
        }
        '\u{0370}'..='\u{03ff}' | '\u{1f00}'..='\u{1fff}' => Some(Script::Greek),
        '\u{0400}'..='\u{052f}' | '\u{2de0}'..='\u{2dff}' | '\u{a640}'..='\u{a69f}' => {
            Some(Script::Cyrillic)
        }
        _ => None,
    }
}

/// A one-line name people read (an app's name): surrounding white space
/// trimmed and inner runs of white space folded to one space. Refuses
/// control characters, invisible characters and words that mix Latin,
/// Greek and Cyrillic letters. Returns the normalised text.
pub fn display_name(raw: &str) -> Result<String, TextError> {
    if has_control(raw) {
        return Err(TextError::Control);
    }
    if raw.chars().any(is_invisible) {
        return Err(TextError::Invisible);
    }
    if raw.chars().any(is_styled_letter) {
        return Err(TextError::StyledLetters);
    }
    // Per word: "Заметки Pro" is two honest words, "Pаypal" with a
    // Cyrillic а is one word pretending to be another.
    // Words end at white space and ASCII punctuation only: a combining mark
    // must not split "Pаypal" into pieces that each look honest.
    for word in raw.split(|c: char| c.is_whitespace() || c.is_ascii_punctuation()) {
        let mut scripts = word.chars().filter_map(script_of);
        if let Some(first) = scripts.next()
            && scripts.any(|script| script != first)
        {
            return Err(TextError::MixedScript);
        }
    }
    Ok(raw.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Free text shown on pages (a description): line breaks allowed, no other
/// control characters, nothing invisible.
pub fn display_paragraph(raw: &str) -> Result<(), TextError> {
    if raw
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        return Err(TextError::Control);
    }
    if raw.chars().any(is_invisible) {
        return Err(TextError::Invisible);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_in_any_one_script_are_kept_and_white_space_is_folded() {
        for (raw, kept) in [
            ("Notes", "Notes"),
            ("  My   Notes  App ", "My Notes App"),
            ("Café Crème 2", "Café Crème 2"),
            ("Заметки", "Заметки"),
            ("Σημειώσεις", "Σημειώσεις"),
            ("メモ帳 Notes", "メモ帳 Notes"),
            ("Заметки Pro", "Заметки Pro"),
            ("Notes – for teams (beta) ✓", "Notes – for teams (beta) ✓"),
        ] {
            assert_eq!(display_name(raw).as_deref(), Ok(kept), "{raw:?}");
        }
    }

    #[test]
    fn control_invisible_and_look_alike_names_are_refused() {
        for (raw, why) in [
            ("Go\u{0}gle", TextError::Control),
            ("Google\n", TextError::Control),
            ("Goo\u{7f}gle", TextError::Control),
            ("Goo\u{85}gle", TextError::Control),
            ("Goo\u{200b}gle", TextError::Invisible),
            ("Goo\u{200d}gle", TextError::Invisible),
            ("\u{feff}Google", TextError::Invisible),
            ("Goo\u{ad}gle", TextError::Invisible),
            ("elgooG\u{202e}", TextError::Invisible),
            ("Goo\u{2066}gle", TextError::Invisible),
            ("\u{3164}", TextError::Invisible),
            ("Goo\u{e0041}gle", TextError::Invisible),
            // Cyrillic о and е among Latin letters.
            ("G\u{043e}\u{043e}gle", TextError::MixedScript),
            ("Pay\u{0440}al", TextError::MixedScript),
            ("Pa\u{0301}y\u{0440}al", TextError::MixedScript),
            // Greek omicron.
            ("Micr\u{03bf}soft", TextError::MixedScript),
            (
                "\u{ff27}\u{ff4f}\u{ff4f}\u{ff47}\u{ff4c}\u{ff45}",
                TextError::StyledLetters,
            ),
            (
                "\u{1d406}\u{1d428}\u{1d428}\u{1d420}\u{1d425}\u{1d41e}",
                TextError::StyledLetters,
            ),
            ("Goo\u{1d173}gle", TextError::Invisible),
            ("G\u{0338}oogle", TextError::StyledLetters),
        ] {
            assert_eq!(display_name(raw), Err(why), "{raw:?}");
        }
    }

    #[test]
    fn paragraphs_keep_line_breaks_only() {
        assert_eq!(display_paragraph("one\r\ntwo"), Ok(()));
        assert_eq!(display_paragraph("a\u{0}b"), Err(TextError::Control));
        assert_eq!(display_paragraph("a\u{200b}b"), Err(TextError::Invisible));
    }
}
