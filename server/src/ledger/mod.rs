//! The demo domain that SCA protects: a small ledger of SEPA transfers and
//! beneficiaries. Requests are parsed here into types that cannot hold an
//! invalid value; a parse error names the JSON field at fault.

mod amount;
mod iban;

pub use amount::{Amount, AmountError, Currency, CurrencyError};
pub use iban::{Iban, IbanError};

use shared::{ActionSummary, BeneficiaryRequest, TransferRequest};

/// A request field that does not parse: the field's JSON path and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub const TRANSFER_ACTION: &str = "transfer.single.create";
pub const BENEFICIARY_ACTION: &str = "beneficiary.create";
/// A transfer of this demo ledger settles at once.
pub const TRANSFER_STATUS: &str = "settled";

/// What the user approves must read as what the action does (on the page
/// and in the SMS): no control characters, and none that hide or reorder
/// text or that a screen shows as nothing.
fn check_visible(text: &str) -> Result<(), &'static str> {
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if text.chars().any(is_invisible) {
        return Err("must not contain invisible characters (format, bidirectional, zero-width, private-use or unassigned)");
    }
    Ok(())
}

/// By Unicode's general category (the crate's tables, as Unicode
/// publishes them): format characters (`Cf`: bidirectional controls,
/// zero-width spaces and joiners, the byte-order mark, soft hyphen, tag
/// characters…), line and paragraph separators (`Zl`, `Zp`), private use
/// (`Co`) and unassigned code points (`Cn`); and the letters and symbols
/// that render as blank, which no property names together: the Hangul
/// fillers and the blank Braille pattern.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    ) || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}')
}

/// A payee's name as SEPA allows it: 1 to 70 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayeeName(String);

impl PayeeName {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("must not be empty");
        }
        if trimmed.chars().count() > 70 {
            return Err("must be at most 70 characters");
        }
        check_visible(trimmed)?;
        Ok(PayeeName(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The remittance information: at most 140 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference(String);

impl Reference {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.chars().count() > 140 {
            return Err("must be at most 140 characters");
        }
        check_visible(text)?;
        Ok(Reference(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub amount: Amount,
    pub currency: Currency,
    pub payee: PayeeName,
    pub iban: Iban,
    pub reference: Option<Reference>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBeneficiary {
    pub name: PayeeName,
    pub iban: Iban,
}

/// A sensitive action, parsed and ready to run once SCA allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Transfer(NewTransfer),
    Beneficiary(NewBeneficiary),
}

/// What running an [`Action`] created: the JSON body of the `201`, as
/// sent the first time and, byte for byte, to an idempotent retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created(pub String);

impl Created {
    pub fn transfer(transfer: shared::Transfer) -> Result<Self, serde_json::Error> {
        serde_json::to_string(&shared::TransferCreated { transfer }).map(Created)
    }

    pub fn beneficiary(beneficiary: shared::Beneficiary) -> Result<Self, serde_json::Error> {
        serde_json::to_string(&shared::BeneficiaryCreated { beneficiary }).map(Created)
    }
}

fn invalid(field: &str, reason: impl ToString) -> FieldError {
    FieldError { field: field.to_owned(), message: format!("{field} {}", reason.to_string()) }
}

impl TryFrom<&TransferRequest> for NewTransfer {
    type Error = FieldError;

    fn try_from(req: &TransferRequest) -> Result<Self, FieldError> {
        Ok(NewTransfer {
            amount: Amount::parse(&req.amount).map_err(|e| invalid("amount", e))?,
            currency: Currency::parse(&req.currency).map_err(|e| invalid("currency", e))?,
            payee: PayeeName::parse(&req.beneficiary.name).map_err(|e| invalid("beneficiary.name", e))?,
            iban: Iban::parse(&req.beneficiary.iban).map_err(|e| invalid("beneficiary.iban", e))?,
            reference: req.reference.as_deref().map(Reference::parse).transpose().map_err(|e| invalid("reference", e))?,
        })
    }
}

impl TryFrom<&BeneficiaryRequest> for NewBeneficiary {
    type Error = FieldError;

    fn try_from(req: &BeneficiaryRequest) -> Result<Self, FieldError> {
        Ok(NewBeneficiary {
            name: PayeeName::parse(&req.beneficiary.name).map_err(|e| invalid("beneficiary.name", e))?,
            iban: Iban::parse(&req.beneficiary.iban).map_err(|e| invalid("beneficiary.iban", e))?,
        })
    }
}

impl Action {
    /// The `201` body of the action once run as `id` at `at` (the row the
    /// store wrote holds the same values).
    pub fn created(&self, id: String, at: crate::clock::Millis) -> Result<Created, serde_json::Error> {
        match self {
            Action::Transfer(t) => Created::transfer(shared::Transfer {
                id,
                status: TRANSFER_STATUS.into(),
                amount: t.amount.to_string(),
                currency: t.currency.code().into(),
                beneficiary: shared::BeneficiaryInput { name: t.payee.as_str().into(), iban: t.iban.as_str().into() },
                reference: t.reference.as_ref().map(|r| r.as_str().into()),
                created_at: at.to_rfc3339(),
            }),
            Action::Beneficiary(b) => Created::beneficiary(shared::Beneficiary {
                id,
                name: b.name.as_str().into(),
                iban: b.iban.as_str().into(),
                created_at: at.to_rfc3339(),
            }),
        }
    }

    pub fn action_type(&self) -> &'static str {
        match self {
            Action::Transfer(_) => TRANSFER_ACTION,
            Action::Beneficiary(_) => BENEFICIARY_ACTION,
        }
    }

    /// What the user is shown on the approval page, hence what they approve.
    pub fn summary(&self) -> ActionSummary {
        match self {
            Action::Transfer(t) => ActionSummary {
                action_type: TRANSFER_ACTION.to_owned(),
                amount: Some(t.amount.grouped()),
                currency: Some(t.currency.code().to_owned()),
                payee_name: t.payee.as_str().to_owned(),
                iban: t.iban.grouped(),
                reference: t.reference.as_ref().map(|r| r.as_str().to_owned()),
            },
            Action::Beneficiary(b) => ActionSummary {
                action_type: BENEFICIARY_ACTION.to_owned(),
                amount: None,
                currency: None,
                payee_name: b.name.as_str().to_owned(),
                iban: b.iban.grouped(),
                reference: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::BeneficiaryInput;

    fn request(amount: &str, iban: &str) -> TransferRequest {
        TransferRequest {
            amount: amount.into(),
            currency: "EUR".into(),
            beneficiary: BeneficiaryInput { name: "ACME SAS".into(), iban: iban.into() },
            reference: Some("INV-42".into()),
        }
    }

    fn field_of(err: FieldError) -> String {
        err.field
    }

    #[test]
    fn a_valid_transfer_request_parses_and_summarises_what_the_user_sees() {
        let transfer = NewTransfer::try_from(&request("1200.00", "FR7630006000011234567890189")).unwrap();
        let summary = Action::Transfer(transfer).summary();
        assert_eq!(summary.amount.as_deref(), Some("1,200.00"));
        assert_eq!(summary.currency.as_deref(), Some("EUR"));
        assert_eq!(summary.payee_name, "ACME SAS");
        assert_eq!(summary.iban, "FR76 3000 6000 0112 3456 7890 189");
        assert_eq!(summary.action_type, TRANSFER_ACTION);
    }

    #[test]
    fn each_invalid_field_is_named() {
        assert_eq!(field_of(NewTransfer::try_from(&request("-3", "FR7630006000011234567890189")).unwrap_err()), "amount");
        assert_eq!(field_of(NewTransfer::try_from(&request("3", "FR7630006000011234567890188")).unwrap_err()), "beneficiary.iban");
        let mut req = request("3", "FR7630006000011234567890189");
        req.currency = "USD".into();
        assert_eq!(field_of(NewTransfer::try_from(&req).unwrap_err()), "currency");
        req.currency = "EUR".into();
        req.beneficiary.name = "   ".into();
        assert_eq!(field_of(NewTransfer::try_from(&req).unwrap_err()), "beneficiary.name");
        req.beneficiary.name = "ACME".into();
        req.reference = Some("x".repeat(141));
        assert_eq!(field_of(NewTransfer::try_from(&req).unwrap_err()), "reference");
    }

    #[test]
    fn payee_names_are_trimmed_and_bounded() {
        assert_eq!(PayeeName::parse("  ACME  ").unwrap().as_str(), "ACME");
        assert!(PayeeName::parse(&"é".repeat(70)).is_ok());
        assert!(PayeeName::parse(&"é".repeat(71)).is_err());
        assert!(PayeeName::parse("A\u{0}B").is_err());
    }

    #[test]
    fn names_and_references_that_hide_or_reorder_text_are_refused() {
        for sneaky in ["ACME\u{202E}SAS", "AC\u{200B}ME", "\u{2066}ACME\u{2069}", "ACME\u{FEFF}", "A\u{200D}B", "A\u{061C}B"] {
            assert!(PayeeName::parse(sneaky).is_err(), "{sneaky:?}");
            assert!(Reference::parse(sneaky).is_err(), "{sneaky:?}");
        }
        // What the 22-code-point list let through: tag characters, the soft
        // hyphen, other format characters, separators, private use,
        // unassigned code points, and blank letters.
        for sneaky in [
            "ACME\u{E0041}\u{E0042}",
            "AC\u{00AD}ME",
            "ACME\u{2028}SAS",
            "ACME\u{2029}SAS",
            "A\u{E000}B",
            "A\u{0378}B",
            "ACME\u{3164}",
            "\u{2800}ACME",
            "A\u{115F}B",
            "A\u{FFA0}B",
            "A\u{110BD}B",
        ] {
            assert!(PayeeName::parse(sneaky).is_err(), "{sneaky:?}");
            assert!(Reference::parse(sneaky).is_err(), "{sneaky:?}");
        }
        assert!(PayeeName::parse("Société Générale – Müller & Søn").is_ok());
        assert!(PayeeName::parse("Ōsaka 株式会社 Ελλάδα Україна عربي").is_ok(), "scripts stay");
        assert!(Reference::parse("Facture n° 42 — été").is_ok());
        let mut req = request("3", "FR7630006000011234567890189");
        req.beneficiary.name = "ACME\u{202E}SAS".into();
        assert_eq!(field_of(NewTransfer::try_from(&req).unwrap_err()), "beneficiary.name");
        req.beneficiary.name = "ACME".into();
        req.reference = Some("INV\u{200B}42".into());
        assert_eq!(field_of(NewTransfer::try_from(&req).unwrap_err()), "reference");
    }
}
