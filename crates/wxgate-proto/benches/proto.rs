//! Hot paths of the callback: signature check, decrypt + parse of a text message,
//! render + encrypt of a reply. Inputs come from the shared vectors.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wxgate_proto::reply::Reply;
use wxgate_proto::signature::{jssdk_signature, msg_signature, url_signature};
use wxgate_proto::{envelope, EncodingAesKey, Message, MsgCrypt};

const TOKEN: &str = "Zeta9Token";
const KEY: &str = "Qm9yaXNUaGVCcmF2ZUFuZFRoZUtleU1ha2VyMjAyNXg";
const APP_ID: &str = "wx5f3c8a9b1d2e4f60";
const PLAINTEXT: &str = "<xml><ToUserName><![CDATA[gh_1a2b3c4d5e6f]]></ToUserName><FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWxYz]]></FromUserName><CreateTime>1718001234</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ping from vectors]]></Content><MsgId>7390000000000000001</MsgId></xml>";

fn signatures(c: &mut Criterion) {
    let expected = url_signature(TOKEN, "1712345678", "880417233").to_hex();
    c.bench_function("url_signature + constant-time compare", |b| {
        b.iter(|| {
            url_signature(
                black_box(TOKEN),
                black_box("1712345678"),
                black_box("880417233"),
            )
            .matches_hex(black_box(&expected))
        })
    });
    let crypt = MsgCrypt::new(&EncodingAesKey::parse(KEY).unwrap(), APP_ID);
    let encrypt = crypt.encrypt(PLAINTEXT, &[7; 16]);
    c.bench_function("msg_signature (352-byte ciphertext)", |b| {
        b.iter(|| {
            msg_signature(
                black_box(TOKEN),
                black_box("1718001240"),
                black_box("314159265"),
                black_box(&encrypt),
            )
        })
    });
    c.bench_function("jssdk_signature", |b| {
        b.iter(|| {
            jssdk_signature(
                black_box("kgt8ON7yVITDhtdwci0qeT1kX0mCx0zAqN6w"),
                "n0nce",
                "1718020002",
                black_box("https://h5.example.org/app/?tab=cart#/x"),
            )
        })
    });
}

fn decrypt_and_parse(c: &mut Criterion) {
    let crypt = MsgCrypt::new(&EncodingAesKey::parse(KEY).unwrap(), APP_ID);
    let body = envelope::request_body("gh_1a2b3c4d5e6f", &crypt.encrypt(PLAINTEXT, &[7; 16]));
    c.bench_function("decrypt + parse text message (safe-mode body)", |b| {
        b.iter(|| {
            let outer = wxgate_proto::xml::parse(black_box(&body)).unwrap();
            let inner = crypt
                .decrypt(envelope::encrypt_of(&outer).unwrap())
                .unwrap();
            Message::parse(&inner).unwrap()
        })
    });
    c.bench_function("parse plaintext text message", |b| {
        b.iter(|| Message::parse(black_box(PLAINTEXT)).unwrap())
    });
    // The same message as a mini-program with 数据格式 JSON sends it.
    let json = wxgate_proto::json::from_xml(PLAINTEXT).unwrap();
    let body = envelope::request_body_json("gh_1a2b3c4d5e6f", &crypt.encrypt(&json, &[7; 16]));
    c.bench_function("decrypt + parse text message (JSON safe-mode body)", |b| {
        b.iter(|| {
            let outer = wxgate_proto::json::parse(black_box(&body)).unwrap();
            let inner = crypt
                .decrypt(envelope::encrypt_of(&outer).unwrap())
                .unwrap();
            Message::parse_json(&inner).unwrap()
        })
    });
    c.bench_function("parse plaintext JSON text message", |b| {
        b.iter(|| Message::parse_json(black_box(&json)).unwrap())
    });
}

fn render_and_encrypt(c: &mut Criterion) {
    let crypt = MsgCrypt::new(&EncodingAesKey::parse(KEY).unwrap(), APP_ID);
    let reply = Reply::Text {
        content: "ping from vectors".into(),
    };
    c.bench_function("render + encrypt + sign text reply", |b| {
        b.iter(|| {
            let xml = reply.render(
                black_box("oAbCdEfGhIjKlMnOpQrStUvWxYz"),
                "gh_1a2b3c4d5e6f",
                1718001240,
            );
            envelope::seal_reply(&crypt, TOKEN, &xml, 1718001240, "314159265", &[9; 16])
        })
    });
    c.bench_function("render + encrypt + sign JSON reply", |b| {
        b.iter(|| {
            let json = reply.render_json(
                black_box("oAbCdEfGhIjKlMnOpQrStUvWxYz"),
                "gh_1a2b3c4d5e6f",
                1718001240,
            );
            envelope::seal_reply_json(&crypt, TOKEN, &json, 1718001240, "314159265", &[9; 16])
        })
    });
}

criterion_group!(benches, signatures, decrypt_and_parse, render_and_encrypt);
criterion_main!(benches);
