use std::fmt;

/// A phone number in E.164 form: `+`, then 8 to 15 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a phone number is '+' followed by 8 to 15 digits, e.g. +33612345678")]
pub struct PhoneError;

impl Phone {
    pub fn parse(text: &str) -> Result<Self, PhoneError> {
        let digits = text.strip_prefix('+').ok_or(PhoneError)?;
        if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
            Ok(Phone(text.to_owned()))
        } else {
            Err(PhoneError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs: only the last two digits (`+33*******78`).
    pub fn masked(&self) -> String {
        let keep = 2;
        let n = self.0.len();
        self.0.chars().enumerate().map(|(i, c)| if i == 0 || i + keep >= n { c } else { '*' }).collect()
    }
}

/// Debug masks the number: phone numbers are personal data.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_parse_and_others_do_not() {
        assert!(Phone::parse("+33612345678").is_ok());
        for bad in ["33612345678", "+0612345678", "+33 6 12", "+1234567", "+1234567890123456", "+3361234567a", ""] {
            assert_eq!(Phone::parse(bad), Err(PhoneError), "{bad:?}");
        }
    }

    #[test]
    fn logs_see_a_masked_number() {
        let phone = Phone::parse("+33612345678").unwrap();
        assert_eq!(phone.masked(), "+*********78");
        assert!(!format!("{phone:?}").contains("3361234"));
    }
}
