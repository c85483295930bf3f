//! Private files: the data directory and what wxgate writes there hold access tokens,
//! the inbox and the admin token, so a directory wxgate creates is 0700 and every file
//! it creates there is 0600. What it did not create it never chmods: a directory or
//! secret file open to group or others gets a warning instead.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The name of the database file inside `data_dir`.
pub const DATABASE_FILE: &str = "wxgate.redb";

/// The file in `data_dir` where a running `serve` keeps the address it listens on.
pub const SERVE_ADDR_FILE: &str = "serve.addr";

/// `data_dir/serve.addr` while `serve` runs: written (0600) once it listens, removed
/// when dropped, so `sim`, `status` and `inbox` reach the server wherever `--listen`
/// put it.
#[derive(Debug)]
pub struct ServeAddr {
    path: PathBuf,
}

impl ServeAddr {
    /// Writes `addr` into `data_dir/serve.addr`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(data_dir: &Path, addr: SocketAddr) -> io::Result<ServeAddr> {
        let path = data_dir.join(SERVE_ADDR_FILE);
        write_private(&path, format!("{addr}\n").as_bytes())?;
        Ok(ServeAddr { path })
    }

    /// The address a running `serve` wrote into `data_dir`, if any; an unspecified IP
    /// (`0.0.0.0`, `::`) as loopback, which is where a local command reaches it.
    pub fn read(data_dir: &Path) -> Option<SocketAddr> {
        let text = std::fs::read_to_string(data_dir.join(SERVE_ADDR_FILE)).ok()?;
        text.trim().parse().ok().map(reachable)
    }
}

impl Drop for ServeAddr {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `addr` as a local client reaches it: an unspecified IP becomes loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if !ip.is_unspecified() => addr,
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port())),
    }
}

/// Creates `dir` (and its parents) with mode 0700 for the last component; returns
/// whether it was created now.
///
/// # Errors
/// The directory cannot be created.
pub fn create_private_dir(dir: &Path) -> io::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates `path` empty with mode 0600 if it does not exist yet (so a library that
/// opens it later finds it private); returns whether it was created now.
///
/// # Errors
/// The file cannot be created.
pub fn create_private_file(path: &Path) -> io::Result<bool> {
    match new_private(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to a new file with mode 0600 (replacing an existing one).
///
/// # Errors
/// The file cannot be written.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut file = new_private(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `path`, which must not exist yet, with mode 0600.
fn new_private(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The permission bits of `path` that let group or others in, when any.
pub fn open_to_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// A start-up warning for a directory or secret file open to group or others.
pub fn warn_if_open(path: &Path, what: &str) {
    if let Some(mode) = open_to_others(path) {
        tracing::warn!(
            "{} ({what}) has mode {mode:o}, readable by other users of this machine: run `chmod go-rwx {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_wxgate_creates_is_private_and_what_it_finds_is_left_alone() {
        let base = std::env::temp_dir().join(format!("wxgate-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("data");
        assert!(create_private_dir(&dir).unwrap());
        assert_eq!(open_to_others(&dir), None);
        assert!(!create_private_dir(&dir).unwrap());
        let file = dir.join(DATABASE_FILE);
        assert!(create_private_file(&file).unwrap());
        assert_eq!(open_to_others(&file), None);
        write_private(&dir.join("token"), b"secret").unwrap();
        assert_eq!(open_to_others(&dir.join("token")), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(!create_private_file(&file).unwrap());
            assert_eq!(open_to_others(&file), Some(0o644), "never chmodded");
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
