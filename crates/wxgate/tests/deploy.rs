//! What a deployment needs from the binary: secrets from the environment
//! (`"${VAR}"` values), config errors that guide (the key's path, a did-you-mean).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wxgate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("WXGATE_TEST_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("wxgate runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const ACCOUNT: &str = "[[account]]\nname = \"a\"\napp_id = \"wx5d3c9a1b2e4f6071\"\n";

#[test]
fn check_reads_a_secret_from_the_environment() {
    let dir = temp_dir("env");
    let config = format!("{ACCOUNT}token = \"${{WXGATE_TEST_TOKEN}}\"\n");
    std::fs::write(dir.join("w.toml"), config).unwrap();
    let set = wxgate(
        &dir,
        &["check", "--config", "w.toml"],
        &[("WXGATE_TEST_TOKEN", "Kq81mZpW0xYv3")],
    );
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));
    let short = wxgate(
        &dir,
        &["check", "--config", "w.toml"],
        &[("WXGATE_TEST_TOKEN", "ab")],
    );
    assert!(
        text(&short).contains("w.toml:4: account[0].token"),
        "the variable's value is checked like a written one: {}",
        text(&short)
    );
    let unset = wxgate(&dir, &["check", "--config", "w.toml"], &[]);
    assert_eq!(unset.status.code(), Some(1), "{}", text(&unset));
    assert!(
        text(&unset).contains("w.toml:4: account[0].token: the environment variable WXGATE_TEST_TOKEN is not set"),
        "{}",
        text(&unset)
    );
}

#[test]
fn check_guides_an_unknown_key_and_a_capitalised_mode() {
    let dir = temp_dir("guide");
    let config = format!("{ACCOUNT}token = \"Kq81mZpW0xYv3\"\ntimestamp_windows_s = 60\n");
    std::fs::write(dir.join("w.toml"), config).unwrap();
    let output = wxgate(&dir, &["check", "--config", "w.toml"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains(
            "w.toml:5: account[0].timestamp_windows_s: unknown key `timestamp_windows_s`; did you mean `timestamp_window_s`?"
        ),
        "{}",
        text(&output)
    );
    let config = format!("{ACCOUNT}token = \"Kq81mZpW0xYv3\"\nmode = \"Plain\"\n");
    std::fs::write(dir.join("w.toml"), config).unwrap();
    let output = wxgate(&dir, &["check", "--config", "w.toml"], &[]);
    assert!(
        text(&output).contains("w.toml:5: account[0].mode: \"Plain\" is not a mode; did you mean \"plain\"?"),
        "{}",
        text(&output)
    );
}
