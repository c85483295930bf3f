//! A WeCom application's callbacks (企业微信 自建应用, 接收消息 → 设置API接收): always
//! encrypted, with the CorpID as the trailer. Its URL verification differs from an
//! Official Account's: the query carries `msg_signature` over token, timestamp, nonce
//! and an *encrypted* `echostr`, and the answer is the decrypted plaintext. Its pushes
//! carry only `msg_signature` (over the body's `Encrypt`).

use wxgate_proto::signature::{diagnose_mismatch, msg_signature};

use super::{Account, Admitted, CallbackQuery, Refusal};

impl Account {
    /// URL verification: checks `msg_signature` and decrypts `echostr`.
    pub(super) fn verify_wecom_url(
        &self,
        query: &CallbackQuery,
        now: i64,
    ) -> Result<String, Refusal> {
        let got = query
            .msg_signature
            .as_deref()
            .ok_or(Refusal::MissingParameter("msg_signature"))?;
        let (timestamp, nonce) = self.timestamp_and_nonce(query, now)?;
        let echostr = query
            .echostr
            .as_deref()
            .ok_or(Refusal::MissingParameter("echostr"))?;
        // WeCom may send the base64 unescaped; form decoding turns its `+` into a
        // space, which base64 never holds.
        let echostr = echostr.replace(' ', "+");
        let token = self.token();
        if !msg_signature(token, timestamp, nonce, &echostr).matches_hex(got) {
            let hint = diagnose_mismatch(token, timestamp, nonce, Some(&echostr), got);
            return Err(Refusal::BadSignature {
                which: "msg_signature",
                hint,
            });
        }
        let (plain, _) = self.decrypt(&echostr)?;
        Ok(plain)
    }

    /// What a push's query alone can prove: `msg_signature` present (it covers the
    /// body, checked once the body is read), a timestamp in the window, and a key.
    pub(super) fn admit_wecom(&self, query: &CallbackQuery, now: i64) -> Result<Admitted, Refusal> {
        if query.msg_signature.is_none() {
            return Err(Refusal::MissingParameter("msg_signature"));
        }
        self.timestamp_and_nonce(query, now)?;
        if self.crypts.is_empty() {
            return Err(Refusal::EncryptedWithoutKey);
        }
        Ok(Admitted { encrypted: true })
    }
}
