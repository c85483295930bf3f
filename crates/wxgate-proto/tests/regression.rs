//! Regression tests named after what broke (in peers or in wxgate). Each says what
//! went wrong above it.

use wxgate_proto::crypto::PAD_BLOCK;
use wxgate_proto::signature::url_signature;
use wxgate_proto::{EncodingAesKey, Error, MsgCrypt};

/// Peers that pad to 16 bytes, or use the cipher's own padding, produce ciphertexts
/// WeChat rejects when the plaintext is a multiple of 16 but not of 32.
#[test]
fn pkcs7_pads_to_32_not_16() {
    let crypt = MsgCrypt::new(&EncodingAesKey::from_bytes([1; 32]), "wx0000000000000000");
    for len in 0..100 {
        let message = "x".repeat(len);
        let encrypt = crypt.encrypt(&message, &[0; 16]);
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&encrypt)
            .unwrap();
        assert_eq!(raw.len() % PAD_BLOCK, 0, "len {len}");
        let unpadded = 20 + len + 18;
        assert_eq!(raw.len(), unpadded + (PAD_BLOCK - unpadded % PAD_BLOCK));
    }
}

/// wechatpy 1.8.18 raises an untyped `struct.error` when the pad byte is 0; we return
/// a typed error for every pad value outside 1..=32 (one error, whatever the byte: no
/// padding oracle).
#[test]
fn wechatpy_pad_zero_struct_error_is_a_typed_error_here() {
    let key = EncodingAesKey::from_bytes([2; 32]);
    let crypt = MsgCrypt::new(&key, "wx0000000000000000");
    for pad in [0u8, 33, 200, 255] {
        let mut block = vec![b'a'; 64];
        block[63] = pad;
        let encrypt = raw_encrypt(&key, &block);
        assert_eq!(crypt.decrypt(&encrypt), Err(Error::BadPadding), "pad {pad}");
    }
}

/// npm wechat-crypto 0.0.2 never compares the AppID trailer; we always do.
#[test]
fn wechat_crypto_skips_appid_check_we_do_not() {
    let key = EncodingAesKey::from_bytes([3; 32]);
    let sender = MsgCrypt::new(&key, "wx1111111111111111");
    let receiver = MsgCrypt::new(&key, "wx2222222222222222");
    let encrypt = sender.encrypt("<xml/>", &[0; 16]);
    assert!(matches!(
        receiver.decrypt(&encrypt),
        Err(Error::AppIdMismatch { .. })
    ));
}

/// A length prefix larger than the buffer must not panic or read past the end.
#[test]
fn msg_len_larger_than_buffer_is_refused() {
    let key = EncodingAesKey::from_bytes([4; 32]);
    let crypt = MsgCrypt::new(&key, "wx0000000000000000");
    let mut block = vec![0u8; 32];
    block[16..20].copy_from_slice(&1000u32.to_be_bytes());
    block[20..].fill(12); // twelve bytes of PKCS#7 padding 12
    let encrypt = raw_encrypt(&key, &block);
    assert!(matches!(
        crypt.decrypt(&encrypt),
        Err(Error::BadBuffer { .. })
    ));
}

/// Numeric sorting instead of byte-wise sorting breaks signatures when the timestamp
/// and nonce have different lengths (9 vs 13 digits).
#[test]
fn sort_is_bytewise_not_numeric() {
    let bytewise = url_signature("wxTok3n", "999999999", "1000000000123");
    assert_eq!(
        bytewise.to_hex(),
        "54282b7daf4e29548f5fcf770c6deea1ddedd109"
    );
}

fn raw_encrypt(key: &EncodingAesKey, plaintext: &[u8]) -> String {
    use aes::cipher::{block_padding::NoPadding, BlockModeEncrypt, KeyIvInit};
    use base64::Engine;
    let mut buf = plaintext.to_vec();
    let len = buf.len();
    let out = cbc::Encryptor::<aes::Aes256>::new(key.key_bytes().into(), (&key.iv()).into())
        .encrypt_padded::<NoPadding>(&mut buf, len)
        .unwrap()
        .to_vec();
    base64::engine::general_purpose::STANDARD.encode(out)
}
