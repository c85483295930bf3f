//! The envelope: decryption and parsing of what a safe-mode push carries. The first
//! byte chooses the input's role:
//! * even: the input is the POST body (outer XML, `Encrypt`, decrypt, parse);
//! * odd: the input is the decrypted buffer itself (random prefix, length, message,
//!   AppID trailer, padding), encrypted here with the test key so that decryption
//!   reaches the length, padding, UTF-8 and AppID checks and the message parser.
//!
//! Whatever decrypts and parses is then answered: the echo reply is sealed and opened
//! again, as WeChat would.
#![no_main]

use aes::cipher::{block_padding::NoPadding, BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use wxgate_proto::reply::Reply;
use wxgate_proto::{envelope, xml, EncodingAesKey, Message, MsgCrypt};

const APP_ID: &str = "wx1234567890abcdef";
const TOKEN: &str = "fuzzToken";

fn encrypt_raw(key: &EncodingAesKey, buffer: &[u8]) -> String {
    let mut buf = buffer.to_vec();
    buf.resize(buffer.len().div_ceil(16).max(1) * 16, 0);
    let len = buf.len();
    let out = cbc::Encryptor::<aes::Aes256>::new(key.key_bytes().into(), (&key.iv()).into())
        .encrypt_padded::<NoPadding>(&mut buf, len)
        .expect("a multiple of the block size")
        .to_vec();
    base64::engine::general_purpose::STANDARD.encode(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    let key = EncodingAesKey::from_bytes([7; 32]);
    let crypt = MsgCrypt::new(&key, APP_ID);
    let inner = if role % 2 == 0 {
        let Ok(body) = std::str::from_utf8(rest) else {
            return;
        };
        let Ok(outer) = xml::parse(body) else {
            return;
        };
        let Some(encrypt) = envelope::encrypt_of(&outer) else {
            return;
        };
        crypt.decrypt(encrypt)
    } else {
        crypt.decrypt(&encrypt_raw(&key, rest))
    };
    let Ok(inner) = inner else {
        return;
    };
    let Ok(message) = Message::parse(&inner) else {
        return;
    };
    let reply = Reply::Text {
        content: message.content().unwrap_or("event").to_owned(),
    };
    let sealed = envelope::seal_reply(
        &crypt,
        TOKEN,
        &reply.render_for(&message, 1),
        1,
        "42",
        &[3; 16],
    );
    let opened = envelope::open_reply(&crypt, TOKEN, &sealed).expect("our envelope opens");
    assert!(opened.xml.chars().all(xml::is_xml_char));
});
