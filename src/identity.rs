//! Identities and tokens. An identity is 32 random bytes; its token is the identity and an
//! HMAC-SHA256 of it under the server's secret key (`<identity hex>.<mac hex>`), so tokens
//! cannot be guessed or forged and the server alone verifies them, with no table of tokens.
//! The key lives in the data directory (`server.key`, created on first start) so tokens
//! outlive restarts; an in-memory server makes a fresh key each run.

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::Path;

/// Who a client is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(pub [u8; 32]);

impl Identity {
    /// A fresh random identity.
    pub fn random() -> Identity {
        Identity(random_bytes())
    }

    /// Parses 64 hex digits.
    pub fn parse(hex_text: &str) -> Option<Identity> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut out).ok()?;
        Some(Identity(out))
    }

    /// The 64 hex digits reducers and logs name a caller by.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.to_hex())
    }
}

fn random_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    getrandom::fill(&mut out).expect("the operating system's random source");
    out
}

/// The server's secret: issues and verifies tokens.
pub struct Keys {
    secret: [u8; 32],
}

/// The key file's name in the data directory.
const KEY_FILE: &str = "server.key";

impl Keys {
    /// A fresh key that lives as long as the process.
    pub fn ephemeral() -> Keys {
        Keys { secret: random_bytes() }
    }

    /// The data directory's key, created (readable by its owner only) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Keys> {
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
            let mut secret = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut secret)
                .with_context(|| format!("{} is not a key (64 hex digits)", path.display()))?;
            return Ok(Keys { secret });
        }
        let keys = Keys::ephemeral();
        let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
        write_private(&tmp, &hex::encode(keys.secret)).with_context(|| format!("{}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("{}", path.display()))?;
        Ok(keys)
    }

    fn mac(&self, identity: Identity) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(&identity.0);
        mac
    }

    /// A new identity and its token.
    pub fn issue(&self) -> (Identity, String) {
        let identity = Identity::random();
        (identity, self.token(identity))
    }

    /// The token of an identity.
    pub fn token(&self, identity: Identity) -> String {
        format!("{}.{}", identity.to_hex(), hex::encode(self.mac(identity).finalize().into_bytes()))
    }

    /// The identity a token proves, or why it proves none.
    pub fn verify(&self, token: &str) -> Result<Identity, String> {
        let (id, mac) = token.split_once('.').ok_or("malformed token: expected <identity>.<signature>")?;
        let identity = Identity::parse(id).ok_or("malformed token: the identity is not 64 hex digits")?;
        let mac = hex::decode(mac).map_err(|_| "malformed token: the signature is not hex")?;
        self.mac(identity).verify_slice(&mac).map_err(|_| "invalid token: the signature does not match")?;
        Ok(identity)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_under_their_key_and_unaltered() {
        let (keys, other) = (Keys::ephemeral(), Keys::ephemeral());
        let (id, token) = keys.issue();
        assert_eq!(keys.verify(&token), Ok(id));
        assert!(other.verify(&token).unwrap_err().contains("does not match"));
        let mut forged = token.clone().into_bytes();
        forged[3] = if forged[3] == b'0' { b'1' } else { b'0' };
        assert!(keys.verify(std::str::from_utf8(&forged).unwrap()).is_err());
        assert!(keys.verify("nonsense").unwrap_err().contains("malformed"));
        assert_ne!(keys.issue().0, id, "identities are random");
    }

    #[test]
    fn the_key_file_survives_restarts() {
        let dir = std::env::temp_dir().join(format!("sluice-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (id, token) = Keys::load_or_create(&dir).unwrap().issue();
        assert_eq!(Keys::load_or_create(&dir).unwrap().verify(&token), Ok(id));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
