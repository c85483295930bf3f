//! `POST /wxa/getwxacodeunlimit`: a mini-program code, answered as the image itself on
//! success and as JSON on error (getUnlimitedQRCode in WeChat's reference).

use serde_json::Value;

use super::Client;
use crate::error::describe;
use crate::Error;

/// The largest code image read, bytes (a 1280 px code is well under it).
pub const MAX_CODE_BYTES: usize = 2 * 1024 * 1024;

impl Client {
    /// `POST /wxa/getwxacodeunlimit`; returns the image's bytes.
    ///
    /// # Errors
    /// [`Error::Http`]; [`Error::Api`] for WeChat's JSON answer (41030: the page is not
    /// in the published mini-program); [`Error::Decode`] for an answer over
    /// [`MAX_CODE_BYTES`] or neither an image nor JSON.
    pub async fn get_wxacode_unlimit(
        &self,
        access_token: &str,
        body: &Value,
    ) -> Result<Vec<u8>, Error> {
        let path = "/wxa/getwxacodeunlimit";
        let http_error = |e: reqwest::Error| Error::Http {
            path: path.to_owned(),
            reason: describe(e),
        };
        let decode = |reason: String| Error::Decode {
            path: path.to_owned(),
            reason,
        };
        let mut response = self
            .http
            .post(format!("{}{path}", self.api_base))
            .query(&[("access_token", access_token)])
            .header("Content-Type", "application/json; charset=utf-8")
            .body(serde_json::to_string(body).expect("JSON values serialise"))
            .send()
            .await
            .map_err(http_error)?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_CODE_BYTES {
                return Err(decode(format!("the answer is over {MAX_CODE_BYTES} bytes")));
            }
        }
        if bytes.first() == Some(&b'{') {
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| decode(format!("not JSON ({e})")))?;
            let errcode = value["errcode"].as_i64().unwrap_or(-1);
            return Err(Error::api(
                errcode,
                value["errmsg"].as_str().unwrap_or_default(),
            ));
        }
        let image = bytes.starts_with(b"\x89PNG") || bytes.starts_with(b"\xff\xd8");
        if !image {
            return Err(decode("neither an image nor JSON".into()));
        }
        Ok(bytes)
    }
}
