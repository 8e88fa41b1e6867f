//! How user text is measured and checked. Every text field goes through here.

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextProblem {
    Empty,
    TooLong { max: usize },
    ControlCharacter,
}

/// Length as Bothy counts it: Unicode scalar values.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Checks one field of user text: not blank, at most `max` characters, and no control characters
/// (new lines and tabs are allowed only where `multiline` is true).
pub fn check(s: &str, max: usize, multiline: bool) -> Result<(), TextProblem> {
    if s.trim().is_empty() {
        return Err(TextProblem::Empty);
    }
    // Cheap bound first: a string with more bytes than 4 × max cannot be short enough,
    // and counting is skipped for megabyte inputs.
    if s.len() > max.saturating_mul(4) || char_len(s) > max {
        return Err(TextProblem::TooLong { max });
    }
    let bad = s.chars().any(|c| {
        let allowed_space = multiline && (c == '\n' || c == '\t');
        c.is_control() && !allowed_space
    });
    if bad {
        return Err(TextProblem::ControlCharacter);
    }
    Ok(())
}

/// A count as people read it in a message: `2000` → `"2,000"` (digits in threes, as the docs
/// write them).
pub fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits_in_threes() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(500), "500");
        assert_eq!(grouped(2000), "2,000");
        assert_eq!(grouped(19_700), "19,700");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn counts_scalar_values_not_bytes_or_utf16_units() {
        assert_eq!(char_len("héllo"), 5);
        assert_eq!(char_len("👍🏽"), 2); // thumbs up + skin tone: two scalar values
        assert_eq!(char_len("𝄞"), 1); // one scalar, two UTF-16 units
    }

    #[test]
    fn checks_blank_length_and_controls() {
        assert_eq!(check("  ", 10, true), Err(TextProblem::Empty));
        assert_eq!(
            check("abcdef", 5, true),
            Err(TextProblem::TooLong { max: 5 })
        );
        assert_eq!(
            check("a\u{0}b", 5, true),
            Err(TextProblem::ControlCharacter)
        );
        assert_eq!(check("a\nb", 5, false), Err(TextProblem::ControlCharacter));
        assert!(check("a\nb", 5, true).is_ok());
        assert!(check("éééé", 4, false).is_ok());
    }
}
