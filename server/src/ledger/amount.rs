use std::fmt;

/// A strictly positive amount in cents, parsed from the decimal string of the
/// API (`"1200.00"`, `"0.5"`, `"12"`). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(i64);

/// The largest single transfer accepted: 1 billion (in the currency's units).
const MAX_CENTS: i64 = 100_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a decimal number such as \"1200.00\"")]
    NotADecimal,
    #[error("may have at most two decimals")]
    TooPrecise,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must not exceed 1000000000.00")]
    TooLarge,
}

impl Amount {
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        let (units, decimals) = match text.split_once('.') {
            Some((u, d)) => (u, d),
            None => (text, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if units.is_empty() || !all_digits(units) || !all_digits(decimals) || (text.contains('.') && decimals.is_empty()) {
            return Err(AmountError::NotADecimal);
        }
        if decimals.len() > 2 {
            return Err(AmountError::TooPrecise);
        }
        // 13 integer digits already exceed MAX_CENTS; refuse before overflow.
        if units.trim_start_matches('0').len() > 12 {
            return Err(AmountError::TooLarge);
        }
        let units: i64 = units.parse().map_err(|_| AmountError::NotADecimal)?;
        let cents: i64 = format!("{decimals:0<2}").parse().map_err(|_| AmountError::NotADecimal)?;
        Self::from_cents(units * 100 + cents)
    }

    pub fn from_cents(cents: i64) -> Result<Self, AmountError> {
        match cents {
            c if c <= 0 => Err(AmountError::NotPositive),
            c if c > MAX_CENTS => Err(AmountError::TooLarge),
            c => Ok(Amount(c)),
        }
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// For people: thousands grouped, two decimals (`1,200.00`).
    pub fn grouped(self) -> String {
        let units = (self.0 / 100).to_string();
        let mut out = String::new();
        for (i, c) in units.chars().enumerate() {
            if i > 0 && (units.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        format!("{out}.{:02}", self.0 % 100)
    }
}

/// The API form: `1200.00`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// The currencies a SEPA transfer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Currency {
    Eur,
}

impl Currency {
    pub fn parse(text: &str) -> Result<Self, CurrencyError> {
        match text {
            "EUR" => Ok(Currency::Eur),
            _ => Err(CurrencyError),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be \"EUR\": SEPA transfers are in euros")]
pub struct CurrencyError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_become_cents() {
        assert_eq!(Amount::parse("1200.00").map(Amount::cents), Ok(120_000));
        assert_eq!(Amount::parse("0.5").map(Amount::cents), Ok(50));
        assert_eq!(Amount::parse("12").map(Amount::cents), Ok(1_200));
        assert_eq!(Amount::parse("0.01").map(Amount::cents), Ok(1));
        assert_eq!(Amount::parse("1000000000.00").map(Amount::cents), Ok(MAX_CENTS));
    }

    #[test]
    fn malformed_amounts_are_refused_with_the_reason() {
        for bad in ["", ".", "1.", ".5", "-1", "+1", "1,00", "1e3", " 1", "abc", "1.2.3", "NaN"] {
            assert_eq!(Amount::parse(bad), Err(AmountError::NotADecimal), "{bad:?}");
        }
        assert_eq!(Amount::parse("1.001"), Err(AmountError::TooPrecise));
        assert_eq!(Amount::parse("0"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("0.00"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("1000000000.01"), Err(AmountError::TooLarge));
        assert_eq!(Amount::parse("99999999999999999999999"), Err(AmountError::TooLarge));
    }

    #[test]
    fn amounts_print_for_the_api_and_for_people() {
        let amount = Amount::parse("1234567.8").unwrap();
        assert_eq!(amount.to_string(), "1234567.80");
        assert_eq!(amount.grouped(), "1,234,567.80");
        assert_eq!(Amount::parse("999").unwrap().grouped(), "999.00");
    }

    #[test]
    fn only_euros_are_accepted() {
        assert_eq!(Currency::parse("EUR"), Ok(Currency::Eur));
        assert_eq!(Currency::parse("eur"), Err(CurrencyError));
        assert_eq!(Currency::parse("USD"), Err(CurrencyError));
    }
}
