/// The SCA method a partner asks for with `X-Qonto-2fa-Preference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PairedDevice,
    Passkey,
    SmsOtp,
    /// Sandbox only: decided through the mocked-session endpoints.
    Mock,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("X-Qonto-2fa-Preference must be one of paired-device, passkey, sms-otp, mock")]
pub struct UnknownMethod;

impl Method {
    /// The header's value; its absence means `paired-device`.
    pub fn from_header(value: Option<&[u8]>) -> Result<Self, UnknownMethod> {
        match value {
            None => Ok(Method::PairedDevice),
            Some(b"paired-device") => Ok(Method::PairedDevice),
            Some(b"passkey") => Ok(Method::Passkey),
            Some(b"sms-otp") => Ok(Method::SmsOtp),
            Some(b"mock") => Ok(Method::Mock),
            Some(_) => Err(UnknownMethod),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::PairedDevice => "paired-device",
            Method::Passkey => "passkey",
            Method::SmsOtp => "sms-otp",
            Method::Mock => "mock",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::from_header(Some(text.as_bytes())).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_paired_device_and_unknown_values_are_refused() {
        assert_eq!(Method::from_header(None), Ok(Method::PairedDevice));
        assert_eq!(Method::from_header(Some(b"passkey")), Ok(Method::Passkey));
        assert_eq!(Method::from_header(Some(b"Passkey")), Err(UnknownMethod));
        assert_eq!(Method::from_header(Some(b"")), Err(UnknownMethod));
        for m in [Method::PairedDevice, Method::Passkey, Method::SmsOtp, Method::Mock] {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
    }
}
