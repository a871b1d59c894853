//! Text from elsewhere (a guest's file name, a server's error, a plugin's message, a
//! user name) made safe for one log line.

/// `s` on one line (every control character, line breaks included, as a space), at most
/// `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn control_characters_become_spaces_and_the_length_is_capped() {
        assert_eq!(one_line("a\nb\r\u{1b}[2Jc", 100), "a b  [2Jc");
        assert_eq!(one_line("ééé", 2), "éé");
    }
}
