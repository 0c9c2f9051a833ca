//! OpenSSH private key text as both Go and OpenSSH write it. Pure: text in, key out.

use ssh_key::PrivateKey;

/// Parses an OpenSSH private key. Go's encoder wraps base64 at 64 or 76 columns while
/// `ssh-key` insists on 70, so on a framing error the body is re-read without line rules.
pub fn parse_private_key(text: &str) -> Result<PrivateKey, ssh_key::Error> {
    PrivateKey::from_openssh(text).or_else(|strict_err| {
        use base64::Engine as _;
        let body: String = text
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN OPENSSH PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END OPENSSH PRIVATE KEY-----")
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| strict_err)?;
        PrivateKey::from_bytes(&bytes)
    })
}
