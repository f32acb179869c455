//! Who acts: partners acting for their users.

use crate::email::Email;
use crate::password::PasswordHash;
use crate::phone::Phone;

/// A partner acting for one of its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub partner_id: String,
    pub user_id: String,
}

/// The authenticated side of a partner request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub owner: Owner,
    pub partner_name: String,
    pub embed: bool,
    pub company_id: String,
    pub phone: Phone,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub phone: Phone,
    pub display_name: String,
    pub webauthn_handle: uuid::Uuid,
    /// Sign-in credentials; absent for a user the directory knows only by
    /// phone (created before accounts, or not yet invited).
    pub email: Option<Email>,
    pub password: Option<PasswordHash>,
    pub role: Role,
    pub company_id: String,
}

/// What a user may do in the company's account area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Member,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}
