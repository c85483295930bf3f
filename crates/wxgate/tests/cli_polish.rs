//! The command line's rough edges from the first hour, run as the real binary: the
//! encoding helpers judge what was already encoded, sim and doctor keep the server's
//! reason whole, and every command has an example and a `--json` that reads alike.

mod common;

use common::tools::*;

// ------------------------------------------------------------ encoding helpers

fn oauth(redirect_uri: &str) -> std::process::Output {
    wxgate(
        &temp_dir("oauth"),
        &[
            "url",
            "oauth",
            "--app-id",
            "wx5f3c8a9b1d2e4f60",
            "--redirect-uri",
            redirect_uri,
            "--scope",
            "snsapi_base",
            "--state",
            "S1",
        ],
    )
}

#[test]
fn url_oauth_refuses_a_redirect_uri_that_was_encoded_already() {
    for (given, meant) in [
        (
            "https://m.example.com/cb%3Fa%3D1",
            "https://m.example.com/cb?a=1",
        ),
        (
            "https%3A%2F%2Fm.example.com%2Fcb%3Fa%3D1",
            "https://m.example.com/cb?a=1",
        ),
    ] {
        let output = oauth(given);
        assert_eq!(output.status.code(), Some(1), "{given}");
        assert!(out(&output).is_empty(), "no URL printed for {given}");
        let message = err(&output);
        assert!(
            message.contains("encoded") && message.contains(meant),
            "{given}: {message}"
        );
    }
    // Encoded text inside the query is legitimate and encoded once more, as WeChat
    // decodes once before it redirects.
    let output = oauth("https://m.example.com/cb?next=%2Fhome&q=%E4%B8%AD");
    assert_eq!(output.status.code(), Some(0), "{}", err(&output));
    assert!(out(&output).contains(
        "redirect_uri=https%3A%2F%2Fm.example.com%2Fcb%3Fnext%3D%252Fhome%26q%3D%25E4%25B8%25AD&"
    ));
}

fn jssdk_warnings(url: &str) -> Vec<String> {
    let output = wxgate(
        &temp_dir("jssdk"),
        &[
            "sign",
            "jssdk",
            "--ticket",
            "t",
            "--noncestr",
            "n",
            "--timestamp",
            "1",
            "--url",
            url,
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    json(&output)["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sign_jssdk_warns_only_for_a_url_encoded_as_a_whole() {
    for page in [
        // A Chinese query as pasted, and as location.href holds it.
        "https://h5.example.org/search?q=微信支付&city=深圳",
        "https://h5.example.org/search?q=%E5%BE%AE%E4%BF%A1&from=singlemessage",
        "https://h5.example.org/app/?tab=cart&next=%2Forders",
    ] {
        let warnings = jssdk_warnings(page);
        assert!(warnings.is_empty(), "{page}: {warnings:?}");
    }
    for encoded in [
        "https%3A%2F%2Fh5.example.org%2Fapp%2F%3Ftab%3Dcart",
        "HTTP%3a%2f%2fh5.example.org%2f",
    ] {
        let warnings = jssdk_warnings(encoded);
        assert_eq!(warnings.len(), 1, "{encoded}: {warnings:?}");
        assert!(warnings[0].contains("whole URL is percent-encoded"));
    }
}
