//! `[[verify_file]]` through the real binary: each file served at its exact path as
//! `text/plain`, byte for byte; the paths of wxgate's own routes refused; `check` on the
//! console's shapes; `doctor --verify-domain` against the served files and against a
//! file that differs.

mod common;

use common::tools::{json, temp_dir, wxgate};

const CODE: &str = "Xy7pQ2mN4kL8vB3c";

fn files(content_of_root: &str) -> String {
    format!(
        "[[verify_file]]\npath = \"/MP_verify_{CODE}.txt\"\ncontent = \"{content_of_root}\"\n\
         [[verify_file]]\npath = \"/wxapp/deep/8f3a61c0e2.txt\"\ncontent = \"line one\\r\\n  ±ünïcode\\t\\n\"\n"
    )
}

#[tokio::test]
async fn files_are_served_exactly_and_doctor_compares_them() {
    let dir = temp_dir("verify-serve");
    std::fs::write(dir.join("wxgate.toml"), common::config_text(&files(CODE))).unwrap();
    let (_server, base) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || common::start_binary(&dir))
            .await
            .unwrap()
    };
    let client = wxgate_client::http_client();
    for (path, expected) in [
        (format!("/MP_verify_{CODE}.txt"), CODE.to_owned()),
        (
            "/wxapp/deep/8f3a61c0e2.txt".to_owned(),
            "line one\r\n  ±ünïcode\t\n".to_owned(),
        ),
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "text/plain", "{path}");
        assert_eq!(
            response.headers()["content-length"].to_str().unwrap(),
            expected.len().to_string()
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            expected.as_bytes(),
            "{path}"
        );
        let head = client.head(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert!(head.bytes().await.unwrap().is_empty());
        let post = client.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(post.status(), 405);
    }
    // Neighbours of a file are not it.
    for other in [
        format!("/MP_verify_{CODE}.txt/"),
        format!("/mp_verify_{CODE}.txt"),
        format!("/MP_verify_{CODE}.txt%20"),
        "/wxapp/deep".to_owned(),
        "/wxapp/deep/8f3a61c0e2.TXT".to_owned(),
    ] {
        let response = client.get(format!("{base}{other}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{other}");
    }

    // doctor fetches and compares: the same config passes...
    let output = wxgate(&dir, &["doctor", "--verify-domain", &base, "--json"]);
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["checks"].as_array().unwrap().len(), 2);
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "pass"));
    // ...a config whose content differs from what the domain serves fails, and says so.
    std::fs::write(
        dir.join("other.toml"),
        common::config_text(&files("Zz7pQ2mN4kL8vB3c")),
    )
    .unwrap();
    let output = wxgate(
        &dir,
        &[
            "doctor",
            "--verify-domain",
            &base,
            "--config",
            "other.toml",
            "--json",
        ],
    );
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let failed = common::tools::find_check(&report, "MP_verify_");
    assert_eq!(failed["status"], "fail");
    assert!(
        failed["detail"].as_str().unwrap().contains("differ"),
        "{failed}"
    );
    // A domain that does not serve the files at all.
    let output = wxgate(
        &dir,
        &[
            "doctor",
            "--verify-domain",
            &format!("{base}/nothing-here"),
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(common::tools::out(&output).contains("answered 404"));
}

#[test]
fn check_refuses_own_routes_and_warns_on_console_shapes() {
    let dir = temp_dir("verify-check");
    for (path, needle) in [
        ("/wx/plain", "own route /wx"),
        ("/healthz", "own route /healthz"),
        ("/api/x.txt", "own route /api"),
        ("/go/mini/x", "own route /go"),
        ("/a/../b.txt", "'..'"),
        ("no-slash.txt", "start with '/'"),
    ] {
        let text = common::config_text(&format!(
            "[[verify_file]]\npath = \"{path}\"\ncontent = \"x\"\n"
        ));
        let (code, report) = common::tools::check_text(&dir, &text);
        assert_eq!(code, Some(1), "{path}: {report:#}");
        common::tools::find_finding(&report, "verify_file[0].path", needle);
    }
    // The same path twice, and an oversized content.
    let text = common::config_text(&format!(
        "[[verify_file]]\npath = \"/a.txt\"\ncontent = \"x\"\n[[verify_file]]\npath = \"/a.txt\"\ncontent = \"y\"\n\
         [[verify_file]]\npath = \"/b.txt\"\ncontent = \"{}\"\n",
        "z".repeat(5000)
    ));
    let (code, report) = common::tools::check_text(&dir, &text);
    assert_eq!(code, Some(1));
    common::tools::find_finding(&report, "verify_file[1].path", "twice");
    common::tools::find_finding(&report, "verify_file[2].content", "longer than 4096");
    // The console's shapes are warnings, for their prefixes only.
    let text = common::config_text(&format!(
        "[[verify_file]]\npath = \"/MP_verify_{CODE}.txt\"\ncontent = \"{CODE}\\n\"\n\
         [[verify_file]]\npath = \"/WW_verify_short.txt\"\ncontent = \"short\"\n\
         [[verify_file]]\npath = \"/wxapp/random-name.txt\"\ncontent = \"anything\"\n"
    ));
    let (code, report) = common::tools::check_text(&dir, &text);
    assert_eq!(code, Some(0), "{report:#}");
    common::tools::find_finding(&report, "verify_file[0].path", "not the file's code");
    common::tools::find_finding(&report, "verify_file[1].path", "not shaped like");
    let about_third = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["key"].as_str().unwrap().starts_with("verify_file[2]"))
        .count();
    assert_eq!(about_third, 0, "{report:#}");
}
