//! The configuration loader: any TOML text is refused with an error or yields a config
//! whose accounts can be built and whose rules can decide on a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate::config::Config;
use wxgate::gateway::account::Account;
use wxgate_proto::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text, "fuzz.toml") else {
        return;
    };
    let message = Message::parse(
        "<xml><ToUserName>gh_a</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>help</Content><MsgId>1</MsgId></xml>",
    )
    .expect("a fixed push");
    for account in &config.accounts {
        let _ = wxgate::rules::decide(&account.rules, &message);
        let _ = Account::new(account.clone());
    }
});
