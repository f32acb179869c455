//! Who acts: partners acting for their users.

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
}
