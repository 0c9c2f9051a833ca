//! AES-SIV lookup fields and paths (`EncryptLookupField` / `EncryptPath`), `charm-protocol.md` §5.
