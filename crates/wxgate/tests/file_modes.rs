//! File modes of the data directory, against the real binary: what wxgate creates is
//! private; what it finds open to other users gets a warning and is left alone.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs `serve` in `dir` until it listens, stops it, and returns its stderr.
fn serve_once(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stdout_lines = stdout.lines();
    assert!(
        stdout_lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.starts_with("wxgate listening on")),
        "wxgate starts"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success());
    stderr
}

fn fresh(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-modes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wxgate.toml"), common::config_text("")).unwrap();
    dir
}

#[test]
fn a_data_dir_wxgate_creates_is_0700_and_its_files_0600() {
    let dir = fresh("new");
    let stderr = serve_once(&dir);
    let data = dir.join("wxgate-data");
    println!(
        "data_dir {:o}, wxgate.redb {:o}, admin_token {:o}",
        mode(&data),
        mode(&data.join("wxgate.redb")),
        mode(&data.join("admin_token"))
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("wxgate.redb")), 0o600);
    assert_eq!(mode(&data.join("admin_token")), 0o600);
    assert!(!stderr.contains("readable by other users"), "{stderr}");
}

#[test]
fn an_open_data_dir_and_admin_token_get_a_warning_and_keep_their_modes() {
    let dir = fresh("open");
    let data = dir.join("wxgate-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        data.join("admin_token"),
        "an-existing-admin-token-0123456789",
    )
    .unwrap();
    std::fs::set_permissions(
        data.join("admin_token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let stderr = serve_once(&dir);
    println!("{stderr}");
    assert!(
        stderr.contains("wxgate-data (data_dir") && stderr.contains("mode 755"),
        "{stderr}"
    );
    assert!(
        stderr.contains("admin_token (the admin API token) has mode 644"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod go-rwx"), "{stderr}");
    assert_eq!(mode(&data), 0o755, "not chmodded");
    assert_eq!(mode(&data.join("admin_token")), 0o644, "not chmodded");
}

#[test]
fn init_writes_its_secrets_owner_only() {
    let dir = std::env::temp_dir().join(format!("wxgate-modes-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["init", "--app-id", "wx1234567890abcdef"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(mode(&dir.join("wxgate.toml")), 0o600);
}
