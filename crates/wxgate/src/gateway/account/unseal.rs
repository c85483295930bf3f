//! An encrypted push's envelope: `msg_signature` over its `Encrypt`, then the
//! decryption with the current key or the previous one. The push's own parsing is the
//! caller's (a message for an account, a notify for a third-party platform).

use wxgate_proto::signature::{diagnose_mismatch, msg_signature};
use wxgate_proto::{envelope, Format, MsgCrypt};

use super::{Account, CallbackQuery, DecryptFailure, Refusal};

impl Account {
    /// Checks `msg_signature` over the body's `Encrypt` and decrypts it: the plaintext
    /// and the key that opened it. Call it only for a push [`Account::admit`] found
    /// encrypted.
    ///
    /// # Errors
    /// A missing `msg_signature`, a body without `Encrypt`, a signature that does not
    /// match, or a decryption failure (its kind only).
    pub fn unseal(
        &self,
        query: &CallbackQuery,
        body: &str,
        format: Format,
    ) -> Result<(String, &MsgCrypt), Refusal> {
        let (Some(timestamp), Some(nonce), Some(got)) = (
            query.timestamp.as_deref(),
            query.nonce.as_deref(),
            query.msg_signature.as_deref(),
        ) else {
            return Err(Refusal::MissingParameter("msg_signature"));
        };
        let outer = format.parse(body).map_err(Refusal::Malformed)?;
        let encrypt = envelope::encrypt_of(&outer).ok_or(Refusal::Malformed(
            wxgate_proto::Error::MissingField { field: "Encrypt" },
        ))?;
        if !msg_signature(self.token(), timestamp, nonce, encrypt).matches_hex(got) {
            let hint = diagnose_mismatch(self.token(), timestamp, nonce, Some(encrypt), got);
            return Err(Refusal::BadSignature {
                which: "msg_signature",
                hint,
            });
        }
        self.decrypt(encrypt)
    }

    pub(super) fn decrypt(&self, encrypt: &str) -> Result<(String, &MsgCrypt), Refusal> {
        let mut first_error = None;
        for crypt in &self.crypts {
            match crypt.decrypt(encrypt) {
                Ok(inner) => return Ok((inner, crypt)),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        Err(Refusal::Decrypt(DecryptFailure::of(
            first_error.expect("at least one key"),
        )))
    }
}
