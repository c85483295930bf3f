//! `wxgate sign`: compute the signatures WeChat computes, and show what was hashed.

use crate::text::mask;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use wxgate_proto::signature::{jssdk_signature, msg_signature, sorted_concat, url_signature};

/// Compute signatures exactly as WeChat does.
///
/// With --explain, the command shows the string that was hashed, with secrets masked.
/// Compare it with what your code hashes.
///
/// Examples:
///   wxgate sign verify --token MyToken123 --timestamp 1712345678 --nonce 880417233 --explain
///   wxgate sign jssdk --ticket TICKET --noncestr n0nce --timestamp 1718020002 --url 'https://h5.example.org/app/?tab=cart'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SignArgs {
    /// Which signature.
    #[command(subcommand)]
    pub kind: SignKind,
    /// Show the exact string that was hashed, with the Token or ticket masked.
    #[arg(long, global = true)]
    pub explain: bool,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The signatures.
#[derive(Debug, Subcommand)]
pub enum SignKind {
    /// The `signature` of URL verification and plaintext pushes.
    ///
    /// Example: wxgate sign verify --token MyToken123 --timestamp 1712345678 --nonce 880417233
    Verify {
        /// The Token (令牌).
        #[arg(long)]
        token: String,
        /// The `timestamp` query value.
        #[arg(long)]
        timestamp: String,
        /// The `nonce` query value.
        #[arg(long)]
        nonce: String,
    },
    /// The `msg_signature` of encrypted pushes and replies.
    ///
    /// Example: wxgate sign msg --token MyToken123 --timestamp 1712345678 --nonce 880417233 --encrypt 'q0tE…=='
    Msg {
        /// The Token (令牌).
        #[arg(long)]
        token: String,
        /// The `timestamp` query value.
        #[arg(long)]
        timestamp: String,
        /// The `nonce` query value.
        #[arg(long)]
        nonce: String,
        /// The `Encrypt` text exactly as in the XML.
        #[arg(long)]
        encrypt: String,
    },
    /// The JS-SDK `wx.config` signature.
    ///
    /// Example: wxgate sign jssdk --ticket TICKET --noncestr n0nce --timestamp 1718020002 --url 'https://h5.example.org/app/?tab=cart#/x'
    Jssdk {
        /// The jsapi_ticket.
        #[arg(long)]
        ticket: String,
        /// The nonceStr given to wx.config.
        #[arg(long)]
        noncestr: String,
        /// The timestamp given to wx.config.
        #[arg(long)]
        timestamp: String,
        /// The page URL, as `location.href` (the #fragment is dropped).
        #[arg(long)]
        url: String,
    },
}

/// Runs `wxgate sign`.
///
/// # Errors
/// Never.
pub fn run(args: SignArgs) -> anyhow::Result<ExitCode> {
    let mut warnings = Vec::new();
    let (signature, hashed) = match &args.kind {
        SignKind::Verify {
            token,
            timestamp,
            nonce,
        } => {
            let masked = mask(token);
            let mut parts = [token.as_str(), timestamp, nonce];
            let concat = sorted_concat(&mut parts).replacen(token.as_str(), &masked, 1);
            if token.trim() != token {
                warnings.push("the Token has leading or trailing whitespace".to_owned());
            }
            (url_signature(token, timestamp, nonce).to_hex(), concat)
        }
        SignKind::Msg {
            token,
            timestamp,
            nonce,
            encrypt,
        } => {
            let masked = mask(token);
            let mut parts = [token.as_str(), timestamp, nonce, encrypt];
            let concat = sorted_concat(&mut parts).replacen(token.as_str(), &masked, 1);
            if encrypt.contains(' ') || encrypt.contains('%') {
                warnings.push("the Encrypt text contains ' ' or '%': it was URL-decoded or -encoded on the way; use it exactly as in the XML".to_owned());
            }
            (
                msg_signature(token, timestamp, nonce, encrypt).to_hex(),
                concat,
            )
        }
        SignKind::Jssdk {
            ticket,
            noncestr,
            timestamp,
            url,
        } => {
            let signed = jssdk_signature(ticket, noncestr, timestamp, url);
            if signed.url != *url {
                warnings.push(format!("the #fragment was dropped: signed {}", signed.url));
            }
            if encoded_as_a_whole(url) {
                warnings.push("the whole URL is percent-encoded (https%3A%2F%2F…): sign location.href.split('#')[0] exactly as the browser has it, not encodeURIComponent(url)".to_owned());
            } else if !url.starts_with("http://") && !url.starts_with("https://") {
                warnings.push(
                    "the URL must be absolute, with http:// or https:// as the page uses"
                        .to_owned(),
                );
            }
            (
                signed.signature.to_hex(),
                signed.string1.replacen(ticket.as_str(), &mask(ticket), 1),
            )
        }
    };
    if args.json {
        let mut value = serde_json::json!({ "signature": signature, "warnings": warnings });
        if args.explain {
            value["hashed"] = serde_json::Value::String(hashed);
        }
        println!("{value:#}");
    } else {
        if args.explain {
            println!("sha1 of: {hashed}");
        }
        println!("{signature}");
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The one encoding mistake worth a warning: `encodeURIComponent(location.href)`, which
/// turns `https://` into `https%3A%2F%2F`. A `%xx` in the path or query is what
/// `location.href` holds for non-ASCII text (`?q=%E4%B8%AD`) and is signed as it is; so
/// is raw text that was pasted without encoding.
fn encoded_as_a_whole(url: &str) -> bool {
    let head = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    head.starts_with("http%3a") || head.starts_with("https%3a")
}
