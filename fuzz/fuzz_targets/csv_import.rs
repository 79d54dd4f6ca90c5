//! Bytes as an import file → `dialerd::import::import_file` as a dry run
//! against a temporary database (the CSV and SQLite readers are private;
//! the file's content decides which one runs). Nothing may panic, and the
//! counts must add up.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use dialerd::clock::SystemClock;
use dialerd::config::Settings;
use dialerd::import::{CampaignOverrides, ImportError, ImportRequest, SqliteSelect, import_file};
use dialerd::store::Store;
use libfuzzer_sys::fuzz_target;

struct World {
    rt: tokio::runtime::Runtime,
    store: Store,
    settings: Settings,
    dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = rt
            .block_on(Store::open(
                &dir.path().join("fuzz.db"),
                Arc::new(SystemClock),
            ))
            .unwrap();
        let settings = Settings::load_with_env(None, &HashMap::new()).unwrap();
        World {
            rt,
            store,
            settings,
            dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let path = w.dir.path().join("input.csv");
    std::fs::write(&path, data).unwrap();
    let req = ImportRequest {
        path,
        campaign: "fuzz".into(),
        overrides: CampaignOverrides::default(),
        select: SqliteSelect::Auto,
        dry_run: true,
    };
    match w
        .rt
        .block_on(import_file(&w.store, &w.settings.campaign_defaults, &req))
    {
        Ok(_)
        | Err(ImportError::DataErr { .. })
        | Err(ImportError::Usage(_))
        | Err(ImportError::NoInput(_)) => {}
        Err(ImportError::Other(e)) => {
            panic!("an import failed for a reason other than its data: {e:#}")
        }
    }
});
