//! The database's files are readable by their owner only (issue #16): the
//! database holds password hashes and every message, so neither it nor its
//! `-wal` and `-shm` files may be readable by other local users, whatever
//! the process's umask.
//!
//! How: a database file that does not exist yet is created here, empty and
//! `0600`, before SQLite opens it (SQLite then takes it as a new database).
//! SQLite creates `-wal` and `-shm` with the mode of the database file, so
//! they are `0600` too; [`restrict`] also tightens all three when they are
//! found wider (a database an earlier version created `0644`).

use std::io;
use std::path::{Path, PathBuf};

/// The mode of the database file, its `-wal` and its `-shm`.
pub const MODE: u32 = 0o600;

/// Create `db` empty with [`MODE`] if it does not exist (an existing file is
/// left as it is; [`restrict`] fixes its mode).
pub fn create(db: &Path) -> io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, MODE);
    match opts.open(db) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Set [`MODE`] on `db`, `db-wal` and `db-shm`, those that exist, where
/// their mode allows more.
pub fn restrict(db: &Path) -> io::Result<()> {
    with_sidecars(db).iter().try_for_each(|p| owner_only(p))
}

/// Set [`MODE`] on `path` if it exists and its mode allows more (also for
/// other files of roomcast's that hold secrets, e.g. the generated JWT
/// secret).
pub fn owner_only(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.permissions().mode() & 0o777 != MODE {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `db`, `db-wal` and `db-shm`.
fn with_sidecars(db: &Path) -> [PathBuf; 3] {
    let side = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [db.to_path_buf(), side("-wal"), side("-shm")]
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_owner_only_and_keeps_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        create(&db).unwrap();
        assert_eq!(mode(&db), MODE);
        std::fs::write(&db, b"kept").unwrap();
        create(&db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"kept");
    }

    #[test]
    fn restricts_wider_files_and_skips_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        let [_, wal, shm] = with_sidecars(&db);
        for p in [&db, &wal] {
            std::fs::write(p, b"").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        restrict(&db).unwrap();
        assert_eq!(mode(&db), MODE);
        assert_eq!(mode(&wal), MODE);
        assert!(!shm.exists());
    }
}
