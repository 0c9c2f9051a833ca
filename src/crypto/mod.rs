//! Cryptography: Charm's formats (sasquatch files, AES-SIV lookup fields) and the
//! at-rest encryption of keys and values in the local database.

pub mod keys;
pub mod keywrap;
pub mod lookup;
pub mod openssh;
pub mod sasquatch;
pub mod seal;
pub mod siv;

pub use keys::EncryptKey;
