//! The inbox against hostile entries: symlinks (to a secret, or dangling in
//! `failed/`), FIFOs, a missing inbox. Nothing outside the inbox is read or
//! written, and reports are private.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use dialerd::clock::ManualClock;
use dialerd::config::{CampaignDefaults, Settings};
use dialerd::import::{InboxOutcome, InboxWatcher};
use dialerd::store::Store;
use tempfile::TempDir;

const SETTLE: Duration = Duration::from_secs(2);
const SECRET: &str = "sk-live-0123456789-SECRET";

struct Env {
    dir: TempDir,
    clock: ManualClock,
    store: Store,
    defaults: CampaignDefaults,
    watcher: InboxWatcher,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap());
    let store = Store::open(&dir.path().join("d.db"), Arc::new(clock.clone()))
        .await
        .unwrap();
    let defaults = Settings::load_with_env(None, &HashMap::new())
        .unwrap()
        .campaign_defaults;
    let watcher = InboxWatcher::new(dir.path().join("inbox"), SETTLE);
    std::fs::write(dir.path().join("api_key"), SECRET).unwrap();
    Env {
        dir,
        clock,
        store,
        defaults,
        watcher,
    }
}

impl Env {
    fn inbox(&self) -> PathBuf {
        self.dir.path().join("inbox")
    }

    fn secret(&self) -> PathBuf {
        self.dir.path().join("api_key")
    }

    async fn scan(&mut self) -> Vec<InboxOutcome> {
        self.watcher
            .scan_once(&self.store, &self.defaults)
            .await
            .unwrap()
    }

    /// Scans until settled files are taken (two scans, the settle time apart).
    async fn scan_settled(&mut self) -> Vec<InboxOutcome> {
        let mut out = self.scan().await;
        self.clock.advance(SETTLE);
        out.extend(self.scan().await);
        out
    }

    async fn contacts(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// Every file under the inbox (and the log of outcomes) must be free of the secret.
    fn assert_secret_absent(&self, outcomes: &[InboxOutcome]) {
        let shown = format!("{outcomes:?}");
        assert!(
            !shown.contains(SECRET),
            "the secret leaked into an outcome: {shown}"
        );
        for entry in walk(&self.inbox()) {
            let meta = std::fs::symlink_metadata(&entry).unwrap();
            if meta.is_file() {
                let text = std::fs::read_to_string(&entry).unwrap_or_default();
                assert!(
                    !text.contains(SECRET),
                    "the secret leaked into {}",
                    entry.display()
                );
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_missing_inbox_and_its_done_and_failed_are_created_private() {
    let mut env = env().await;
    assert!(!env.inbox().exists());
    assert!(env.scan().await.is_empty());
    for d in [
        env.inbox(),
        env.inbox().join("done"),
        env.inbox().join("failed"),
    ] {
        assert!(d.is_dir(), "{} was not created", d.display());
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
}

#[tokio::test]
async fn a_symlink_in_the_inbox_is_refused_unread_and_its_target_never_leaks() {
    let mut env = env().await;
    env.scan().await;
    std::os::unix::fs::symlink(env.secret(), env.inbox().join("leak.csv")).unwrap();
    let out = env.scan_settled().await;
    assert!(
        matches!(out.as_slice(), [InboxOutcome::Failed { error, .. }] if error.contains("symbolic link")),
        "{out:?}"
    );
    let moved = env.inbox().join("failed/leak.csv");
    assert!(
        std::fs::symlink_metadata(&moved)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link itself moves to failed/"
    );
    let report = env.inbox().join("failed/leak.errors.txt");
    assert_eq!(mode(&report), 0o600);
    assert_eq!(env.contacts().await, 0);
    env.assert_secret_absent(&out);
    assert_eq!(std::fs::read_to_string(env.secret()).unwrap(), SECRET);
}

#[tokio::test]
async fn a_sidecar_that_is_a_symlink_is_refused_unread() {
    let mut env = env().await;
    env.scan().await;
    std::fs::write(env.inbox().join("c.csv"), "phone_number\n+442079460001\n").unwrap();
    std::os::unix::fs::symlink(env.secret(), env.inbox().join("c.toml")).unwrap();
    let out = env.scan_settled().await;
    assert!(
        matches!(out.as_slice(), [InboxOutcome::Failed { .. }]),
        "{out:?}"
    );
    assert_eq!(env.contacts().await, 0);
    env.assert_secret_absent(&out);
}

#[tokio::test]
async fn a_dangling_symlink_in_failed_is_never_written_through() {
    let mut env = env().await;
    env.scan().await;
    let outside = env.dir.path().join("outside.txt");
    std::os::unix::fs::symlink(&outside, env.inbox().join("failed/bad.errors.txt")).unwrap();
    std::fs::write(env.inbox().join("bad.csv"), "no phone here\nhello\n").unwrap();
    let out = env.scan_settled().await;
    let [InboxOutcome::Failed { moved_to, .. }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert!(
        !outside.exists(),
        "a report was written through the dangling link"
    );
    assert_ne!(
        moved_to,
        &env.inbox().join("failed/bad.csv"),
        "the taken name was reused"
    );
    let report = moved_to.with_extension("errors.txt");
    assert_eq!(mode(&report), 0o600, "{}", report.display());
}

#[tokio::test]
async fn a_fifo_in_the_inbox_is_refused_without_waiting_on_it() {
    let mut env = env().await;
    env.scan().await;
    let fifo = env.inbox().join("pipe.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = tokio::time::timeout(Duration::from_secs(10), env.scan_settled())
        .await
        .expect("the scan waited on a FIFO");
    assert!(
        matches!(out.as_slice(), [InboxOutcome::Failed { error, .. }] if error.contains("FIFO")),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_failed_directory_that_is_a_symlink_stops_the_scan() {
    let mut env = env().await;
    std::fs::create_dir_all(env.inbox()).unwrap();
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.inbox().join("failed")).unwrap();
    std::fs::write(env.inbox().join("bad.csv"), "no phone here\nhello\n").unwrap();
    let err = env
        .watcher
        .scan_once(&env.store, &env.defaults)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}
