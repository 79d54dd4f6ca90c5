//! The database as a public interface: another process reads it while
//! dialerd holds it open and writes.

use std::process::Command;
use std::sync::Arc;

use dialerd::clock::SystemClock;
use dialerd::store::Store;

#[tokio::test]
async fn another_process_reads_the_database_while_dialerd_holds_a_write_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let store = Store::open(&db, Arc::new(SystemClock)).await.unwrap();
    sqlx::query("INSERT INTO campaigns (name, agent_id) VALUES ('shared', 1)")
        .execute(store.pool())
        .await
        .unwrap();
    // Hold a write transaction open: in WAL mode readers still see the last commit.
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO campaigns (name, agent_id) VALUES ('uncommitted', 1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dialerd"))
        .args(["status", "--json"])
        .env("DIALERD_DATABASE__PATH", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = json["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["campaign"].as_str())
        .collect();
    assert_eq!(names, ["shared"]);
    tx.commit().await.unwrap();
}
