use std::fmt;

/// An IBAN whose length and ISO 13616 check digits (mod 97) are right.
/// Kept in electronic form: upper case, no spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iban(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IbanError {
    #[error("must be 15 to 34 letters and digits")]
    Length,
    #[error("must start with a two-letter country code and two check digits")]
    Shape,
    #[error("may only hold letters and digits")]
    Characters,
    #[error("check digits do not match: the IBAN has a typo")]
    Checksum,
}

impl Iban {
    pub fn parse(text: &str) -> Result<Self, IbanError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
        if !(15..=34).contains(&compact.len()) {
            return Err(IbanError::Length);
        }
        if !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(IbanError::Characters);
        }
        let bytes = compact.as_bytes();
        if !bytes[..2].iter().all(u8::is_ascii_uppercase) || !bytes[2..4].iter().all(u8::is_ascii_digit) {
            return Err(IbanError::Shape);
        }
        if mod97(bytes[4..].iter().chain(&bytes[..4])) != 1 {
            return Err(IbanError::Checksum);
        }
        Ok(Iban(compact))
    }

    /// Electronic form, e.g. `FR7630006000011234567890189`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Print form, grouped by four: `FR76 3000 6000 0112 3456 7890 189`.
    pub fn grouped(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + self.0.len() / 4);
        for (i, c) in self.0.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The remainder mod 97 of the number spelt by the characters, letters
/// counting as 10..=35.
fn mod97<'a>(chars: impl Iterator<Item = &'a u8>) -> u32 {
    chars.fold(
        0u32,
        |acc, &c| {
            if c.is_ascii_digit() {
                (acc * 10 + u32::from(c - b'0')) % 97
            } else {
                (acc * 100 + u32::from(c - b'A' + 10)) % 97
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_french_iban_parses_with_spaces_and_lower_case() {
        let iban = Iban::parse("fr76 3000 6000 0112 3456 7890 189").unwrap();
        assert_eq!(iban.as_str(), "FR7630006000011234567890189");
        assert_eq!(iban.grouped(), "FR76 3000 6000 0112 3456 7890 189");
    }

    #[test]
    fn valid_ibans_of_other_countries_parse() {
        for text in ["DE89370400440532013000", "GB82WEST12345698765432", "NL91ABNA0417164300", "BE68539007547034"] {
            assert!(Iban::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn a_single_changed_digit_breaks_the_checksum() {
        assert_eq!(Iban::parse("FR7630006000011234567890188"), Err(IbanError::Checksum));
        assert_eq!(Iban::parse("DE89370400440532013001"), Err(IbanError::Checksum));
    }

    #[test]
    fn wrong_lengths_shapes_and_characters_are_refused() {
        assert_eq!(Iban::parse(""), Err(IbanError::Length));
        assert_eq!(Iban::parse("FR76300060"), Err(IbanError::Length));
        assert_eq!(Iban::parse(&"FR76".repeat(9)), Err(IbanError::Length));
        assert_eq!(Iban::parse("7630006000011234567890189"), Err(IbanError::Shape));
        assert_eq!(Iban::parse("FRXX30006000011234567890189"), Err(IbanError::Shape));
        assert_eq!(Iban::parse("FR76-3000-6000-0112-3456"), Err(IbanError::Characters));
        assert_eq!(Iban::parse("FR763000600001123456789é"), Err(IbanError::Characters));
    }
}
