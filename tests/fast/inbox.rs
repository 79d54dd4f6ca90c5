//! The inbox watcher, driven scan by scan with a manual clock: files are taken
//! once settled, moved to `done/` or `failed/` with a report, sidecars apply.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use dialerd::clock::ManualClock;
use dialerd::config::{CampaignDefaults, Settings};
use dialerd::import::{InboxOutcome, InboxWatcher};
use dialerd::store::Store;
use tempfile::TempDir;

const SETTLE: Duration = Duration::from_secs(2);

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
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let watcher = InboxWatcher::new(&inbox, SETTLE);
    Env {
        dir,
        clock,
        store,
        defaults,
        watcher,
    }
}

impl Env {
    fn inbox(&self) -> std::path::PathBuf {
        self.dir.path().join("inbox")
    }

    fn drop_file(&self, name: &str, text: &str) {
        std::fs::write(self.inbox().join(name), text).unwrap();
    }

    async fn scan(&mut self) -> Vec<InboxOutcome> {
        self.watcher
            .scan_once(&self.store, &self.defaults)
            .await
            .unwrap()
    }

    /// Scans, lets the settle time pass, scans again.
    async fn settle(&mut self) -> Vec<InboxOutcome> {
        let first = self.scan().await;
        assert!(
            first.is_empty(),
            "nothing is taken on its first scan: {first:?}"
        );
        self.clock.advance(SETTLE);
        self.scan().await
    }

    async fn contacts(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[tokio::test]
async fn a_file_is_taken_only_after_it_has_settled_and_then_moves_to_done() {
    let mut e = env().await;
    e.drop_file(
        "spring.csv",
        "phone,name\n+14155552671,Ann\n+14155552672,Bob\n",
    );
    assert!(e.scan().await.is_empty());
    e.clock.advance(Duration::from_secs(1));
    assert!(e.scan().await.is_empty(), "not settled yet");
    e.clock.advance(Duration::from_secs(1));
    let out = e.scan().await;
    let [
        InboxOutcome::Imported {
            moved_to, report, ..
        },
    ] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(moved_to, &e.inbox().join("done/spring.csv"));
    assert_eq!(report.counts.imported, 2);
    assert_eq!(
        report.campaign, "spring",
        "the campaign is named after the file stem"
    );
    assert!(!exists(&e.inbox().join("spring.csv")));
    assert_eq!(e.contacts().await, 2);
    assert!(e.scan().await.is_empty());
}

#[tokio::test]
async fn a_file_that_changes_between_scans_must_settle_again() {
    let mut e = env().await;
    e.drop_file("a.csv", "phone\n+14155552671\n");
    assert!(e.scan().await.is_empty());
    e.clock.advance(SETTLE);
    e.drop_file("a.csv", "phone\n+14155552671\n+14155552672\n");
    assert!(e.scan().await.is_empty(), "it grew since the last scan");
    e.clock.advance(SETTLE);
    assert_eq!(e.scan().await.len(), 1);
    assert_eq!(e.contacts().await, 2);
}

#[tokio::test]
async fn a_file_without_a_phone_column_moves_to_failed_with_an_errors_report() {
    let mut e = env().await;
    e.drop_file("bad.csv", "name,email\nAnn,a@example.com\n");
    let out = e.settle().await;
    let [
        InboxOutcome::Failed {
            moved_to, error, ..
        },
    ] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(moved_to, &e.inbox().join("failed/bad.csv"));
    assert!(error.contains("no phone column"), "{error}");
    let report = std::fs::read_to_string(e.inbox().join("failed/bad.errors.txt")).unwrap();
    assert!(
        report.contains("no phone column") && report.contains("\"name\", \"email\""),
        "{report}"
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM campaigns")
            .fetch_one(e.store.pool())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_file_of_only_invalid_rows_fails_with_its_rejects_in_the_report() {
    let mut e = env().await;
    e.drop_file("junk.csv", "phone\n+1 123\nhello\n");
    let out = e.settle().await;
    assert!(
        matches!(out.as_slice(), [InboxOutcome::Failed { .. }]),
        "{out:?}"
    );
    let report = std::fs::read_to_string(e.inbox().join("failed/junk.errors.txt")).unwrap();
    assert!(
        report.contains("line 2: \"+1 123\"") && report.contains("line 3: \"hello\""),
        "{report}"
    );
}

#[tokio::test]
async fn a_sidecar_names_the_campaign_and_sets_its_window() {
    let mut e = env().await;
    e.drop_file(
        "upload-17.toml",
        "campaign = \"spring\"\nwindow = \"10:00-18:00\"\nmax_attempts = 2\n",
    );
    e.drop_file("upload-17.csv", "phone\n+14155552671\n");
    let out = e.settle().await;
    assert!(
        matches!(out.as_slice(), [InboxOutcome::Imported { .. }]),
        "{out:?}"
    );
    let c = e
        .store
        .campaign_by_name("spring")
        .await
        .unwrap()
        .expect("campaign from the sidecar");
    assert_eq!(
        (
            c.window_start.as_str(),
            c.window_end.as_str(),
            c.max_attempts
        ),
        ("10:00", "18:00", 2)
    );
    assert!(
        exists(&e.inbox().join("done/upload-17.toml")),
        "the sidecar moves with its file"
    );
}

#[tokio::test]
async fn a_sidecar_with_an_unknown_key_sends_the_file_to_failed() {
    let mut e = env().await;
    e.drop_file("a.toml", "campaign = \"x\"\nwindw = \"10:00-18:00\"\n");
    e.drop_file("a.csv", "phone\n+14155552671\n");
    let out = e.settle().await;
    let [InboxOutcome::Failed { error, .. }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert!(error.contains("windw"), "{error}");
    assert!(exists(&e.inbox().join("failed/a.errors.txt")));
    assert!(exists(&e.inbox().join("failed/a.toml")));
    assert_eq!(e.contacts().await, 0);
}

#[tokio::test]
async fn dropping_the_same_file_again_adds_nothing_and_it_still_moves_to_done_under_a_new_name() {
    let mut e = env().await;
    let text = "phone\n+14155552671\n+14155552672\n";
    e.drop_file("list.csv", text);
    e.settle().await;
    e.drop_file("list.csv", text);
    let out = e.settle().await;
    let [
        InboxOutcome::Imported {
            moved_to, report, ..
        },
    ] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert!(report.already_imported.is_some());
    assert_eq!(moved_to, &e.inbox().join("done/list.20261125T080004Z.csv"));
    assert!(exists(&e.inbox().join("done/list.csv")));
    assert_eq!(e.contacts().await, 2);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM imports")
            .fetch_one(e.store.pool())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn hidden_files_and_other_extensions_are_left_alone() {
    let mut e = env().await;
    e.drop_file(".partial.csv", "phone\n+14155552671\n");
    e.drop_file("notes.txt", "phone\n+14155552671\n");
    assert!(e.settle().await.is_empty());
    e.clock.advance(SETTLE);
    assert!(e.scan().await.is_empty());
    assert!(exists(&e.inbox().join(".partial.csv")) && exists(&e.inbox().join("notes.txt")));
}

#[tokio::test]
async fn a_file_that_vanishes_before_it_settles_is_forgotten_without_error() {
    let mut e = env().await;
    e.drop_file("gone.csv", "phone\n+14155552671\n");
    assert!(e.scan().await.is_empty());
    std::fs::remove_file(e.inbox().join("gone.csv")).unwrap();
    e.clock.advance(SETTLE);
    assert!(e.scan().await.is_empty());
}

#[tokio::test]
async fn a_missing_inbox_directory_is_created_and_one_that_cannot_be_is_an_error_not_a_panic() {
    let e = env().await;
    let mut w = InboxWatcher::new(e.dir.path().join("new"), SETTLE);
    assert!(w.scan_once(&e.store, &e.defaults).await.unwrap().is_empty());
    assert!(e.dir.path().join("new/done").is_dir());
    // Its parent is a file: nothing can be created under it.
    std::fs::write(e.dir.path().join("file"), "x").unwrap();
    let mut w = InboxWatcher::new(e.dir.path().join("file/inbox"), SETTLE);
    let err = w.scan_once(&e.store, &e.defaults).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot create inbox directory"),
        "{err}"
    );
}
