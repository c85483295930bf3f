//! The decryption oracle, tried against the real binary: a captured safe-mode
//! ciphertext with its first block XOR-ed, so that the decrypted length field shrinks
//! and the message itself lands in the AppID trailer, signed with the Token (a weaker
//! secret than the EncodingAESKey) and POSTed. The answer must be the one every
//! decryption failure gets, and neither it nor the process's log may carry any of the
//! message's text.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::*;
use wxgate_proto::push::build;
use wxgate_proto::signature::msg_signature;
use wxgate_proto::{envelope, EncodingAesKey, MsgCrypt};

/// POSTs `encrypt` in a safe-mode envelope, signed with the account's Token.
async fn post_signed(client: &reqwest::Client, base: &str, encrypt: &str) -> (u16, String) {
    let timestamp = now().to_string();
    let nonce = "1618033";
    let signature = msg_signature(TOKEN, &timestamp, nonce, encrypt).to_hex();
    let url = format!(
        "{base}/wx/safe?timestamp={timestamp}&nonce={nonce}&encrypt_type=aes&msg_signature={signature}"
    );
    post(client, &url, envelope::request_body("gh_test", encrypt)).await
}

/// The ciphertext with the length field (plaintext bytes 16..20, decrypted from
/// block 1 XOR block 0) changed from `from` to `to` by XOR-ing block 0.
fn shrink(captured: &[u8], from: usize, to: usize) -> String {
    let mut bytes = captured.to_vec();
    let flip = (from as u32 ^ to as u32).to_be_bytes();
    for (byte, flip) in bytes.iter_mut().zip(flip) {
        *byte ^= flip;
    }
    STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shrunk_length_field_reads_no_plaintext_from_the_answer_or_the_log() {
    let dir = std::env::temp_dir().join(format!("wxgate-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "data_dir = \"{}\"\n[[account]]\nname = \"safe\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"safe\"\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"got it\" }}\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    let log = dir.join("wxgate.log");
    let (run_dir, log_path) = (dir.clone(), log.clone());
    let (child, base) =
        tokio::task::spawn_blocking(move || start_binary_logged(&run_dir, &log_path))
            .await
            .unwrap();
    let client = wxgate_client::http_client();

    let secret = "the vault code is 4711-0815, tell nobody";
    let message = build::text("gh_test", "oVictimOpenId7", now(), secret, 7_000_001);
    let captured_text = crypt().encrypt(&message, &[42; 16]);
    let captured = STANDARD.decode(&captured_text).unwrap();

    // The untouched ciphertext is answered: the attack below starts from a real capture.
    let (status, body) = post_signed(&client, &base, &captured_text).await;
    assert_eq!(status, 200, "{body}");

    // The attack: each shrunk length moves a different tail of the message into the
    // trailer, which wxgate used to print as "the AppID inside the encrypted message".
    let shrunk: Vec<(String, String)> = [0, 1, 5, 20, message.len() / 2, message.len() - 1]
        .into_iter()
        .map(|to| (format!("length {to}"), shrink(&captured, message.len(), to)))
        .collect();
    // Every other way to fail decryption, for comparison. They go first: the refusal
    // log keeps 5 lines per 10 s per account and outcome, and the first five attempts
    // cover every kind the log must name.
    let mut attempts: Vec<(String, String)> = Vec::new();
    let mut padding = captured.clone();
    let at = padding.len() - 17;
    padding[at] ^= 0x55;
    let key = EncodingAesKey::parse(KEY).unwrap();
    attempts.extend([
        ("padding".to_owned(), STANDARD.encode(&padding)),
        ("not base64".to_owned(), "%%%%".to_owned()),
        (
            "foreign AppID".to_owned(),
            MsgCrypt::new(&key, "wx9999999999999999").encrypt(&message, &[1; 16]),
        ),
        (
            "not a message".to_owned(),
            crypt().encrypt(&format!("<xml><Content>{secret}</Content>"), &[2; 16]),
        ),
        (
            "not UTF-8".to_owned(),
            crypt().encrypt(&message, &[3; 16]).replace('A', "B"),
        ),
    ]);
    attempts.insert(4, shrunk[0].clone());
    attempts.extend(shrunk.into_iter().skip(1));
    for (name, encrypt) in &attempts {
        let (status, body) = post_signed(&client, &base, encrypt).await;
        assert_eq!(
            (status, body.as_str()),
            (400, "cannot decrypt"),
            "{name}: every decryption failure gets the same answer"
        );
    }
    drop(child);

    let log = std::fs::read_to_string(&log).unwrap();
    for kind in ["(app_id)", "(padding)", "(ciphertext)", "(xml)"] {
        assert!(log.contains(kind), "the log names the kind {kind}:\n{log}");
    }
    assert!(
        log.contains("wx9999999999999999"),
        "a trailer shaped like an AppID is logged, as a hint:\n{log}"
    );
    // No 8-byte window of the message (tags included) appears in the log.
    let plain = message.as_bytes();
    for window in plain.windows(8) {
        let window = String::from_utf8_lossy(window);
        assert!(
            !log.contains(window.as_ref()),
            "the log carries {window:?} of the decrypted message:\n{log}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
