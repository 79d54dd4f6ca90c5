//! Storage faults: a full filesystem, a read-only database, another writer
//! holding the lock. Whatever a failed statement leaves behind, the pool's
//! connections stay usable, and writes succeed again once the cause is gone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::SystemClock;

/// A tmpfs mounted for one test and unmounted when dropped; `None` where the
/// test cannot mount one (not root, no mount namespace rights).
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Self {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A store over an already migrated database, its connections adjusted by `f`.
async fn open_with(
    path: &Path,
    f: impl FnOnce(SqliteConnectOptions) -> SqliteConnectOptions,
) -> Store {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let opts = f(opts);
    let pool = pool_options().connect_with(opts.clone()).await.unwrap();
    Store {
        pool,
        clock: Arc::new(SystemClock),
        write_turn: Arc::new(tokio::sync::Mutex::new(())),
        connect: opts,
        guard: None,
    }
}

/// Fills the filesystem holding `dir` until a write fails with ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0xa5u8; 16 * 1024];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                break;
            }
        }
    }
    // Whatever half block was written may stay: the disk is full either way.
    path
}

/// A write transaction of about 1.3 MB (many events with a long detail
/// each): more than a full filesystem has, less than the test's tmpfs.
async fn big_write(store: &Store) -> sqlx::Result<()> {
    let mut tx = store.begin_write().await?;
    let detail = "x".repeat(32 * 1024);
    let now = store.now_text();
    for _ in 0..40 {
        daemon::insert_event(&mut tx, &now, "test", None, None, None, Some(&detail)).await?;
    }
    tx.commit().await
}

/// Every one of the pool's connections can take a write transaction.
async fn every_connection_writes(store: &Store) {
    for i in 0..12 {
        store
            .pause_dispatch(&format!("write {i} after the fault"))
            .await
            .unwrap_or_else(|e| panic!("write {i} after the fault failed: {e}"));
        store.resume_dispatch().await.unwrap();
    }
}

#[tokio::test]
async fn a_full_disk_never_poisons_a_connection_and_writes_resume_once_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = SmallFs::mount(tmp.path(), "3m") else {
        eprintln!("cannot mount a tmpfs here; injected SQLITE_FULL test covers this case");
        return;
    };
    let store = Store::open(&fs.dir.join("d.db"), Arc::new(SystemClock))
        .await
        .unwrap();
    let filler = fill(&fs.dir);
    let mut failures = 0;
    for _ in 0..8 {
        match big_write(&store).await {
            Ok(()) => {}
            Err(e) => {
                assert!(
                    !e.to_string().contains("transaction depth"),
                    "a connection was left inside a transaction: {e}"
                );
                failures += 1;
            }
        }
    }
    assert!(failures > 0, "the full disk never made a write fail");
    std::fs::remove_file(filler).unwrap();
    every_connection_writes(&store).await;
    big_write(&store).await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn an_injected_sqlite_full_never_poisons_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("d.db"), Arc::new(SystemClock))
        .await
        .unwrap();
    for _ in 0..8 {
        let result: sqlx::Result<()> = async {
            let mut tx = store.begin_write().await?;
            // Caps this connection's database at its current size, so the
            // next growth fails with SQLITE_FULL as a full disk would.
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA max_page_count = {pages}"
            )))
            .execute(&mut *tx)
            .await?;
            let detail = "x".repeat(64 * 1024);
            let now = store.now_text();
            for _ in 0..50 {
                daemon::insert_event(&mut tx, &now, "test", None, None, None, Some(&detail))
                    .await?;
            }
            tx.commit().await
        }
        .await;
        let e = result.expect_err("the capped database accepted the write");
        assert!(
            e.to_string().contains("full"),
            "expected SQLITE_FULL, got {e}"
        );
    }
    // The capped connections are gone (or rolled back and reset); every
    // connection the pool hands out now writes.
    every_connection_writes(&store).await;
    big_write(&store).await.unwrap();
}

#[tokio::test]
async fn a_read_only_database_fails_writes_cleanly_and_writes_resume_once_writable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let store = Store::open(&path, Arc::new(SystemClock)).await.unwrap();
    store.close().await;
    // Root ignores file modes, so the read-only case is SQLite's own flag.
    let ro = open_with(&path, |o| o.read_only(true)).await;
    for _ in 0..6 {
        let e = ro.pause_dispatch("read-only").await.unwrap_err();
        assert!(
            !e.to_string().contains("transaction depth"),
            "a connection was left inside a transaction: {e}"
        );
        assert!(e.to_string().contains("readonly"), "{e}");
    }
    ro.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let store = Store::open(&path, Arc::new(SystemClock)).await.unwrap();
    every_connection_writes(&store).await;
}

#[tokio::test]
async fn a_writer_in_another_process_delays_writes_and_never_poisons_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    Store::open(&path, Arc::new(SystemClock))
        .await
        .unwrap()
        .close()
        .await;
    let store = open_with(&path, |o| o.busy_timeout(Duration::from_millis(100))).await;
    // Another process holds the write lock for longer than the busy timeout.
    let mut holder = Command::new("sqlite3")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 is needed for this test");
    let mut stdin = holder.stdin.take().unwrap();
    {
        use std::io::{BufRead, Write};
        writeln!(
            stdin,
            ".timeout 5000\nBEGIN IMMEDIATE;\nINSERT INTO events (at, kind) VALUES ('x', 'other');\nSELECT 'locked';"
        )
        .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
    }
    for i in 0..6 {
        let e = store
            .pause_dispatch("while locked")
            .await
            .expect_err("a write went through while another process held the lock");
        assert!(
            e.to_string().contains("locked"),
            "write {i} failed otherwise: {e}"
        );
    }
    {
        use std::io::Write;
        writeln!(stdin, "COMMIT;").unwrap();
    }
    drop(stdin);
    holder.wait().unwrap();
    every_connection_writes(&store).await;
}
