use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn defaults_apply_without_a_file() {
    let s = Settings::load_with_env(None, &env(&[])).unwrap();
    assert_eq!(s.database_path, PathBuf::from("dialerd.db"));
    assert_eq!(s.raw.dispatch.rate_per_second, 1.0);
    assert_eq!(s.raw.dispatch.max_in_flight, 8);
    assert_eq!(s.raw.reconcile.uncertain_grace_secs, 600);
    assert_eq!(s.campaign_defaults.max_attempts, 3);
    assert_eq!(s.campaign_defaults.schedule.as_str(), "0 */5 * * * *");
    assert_eq!(s.base_url, "https://backend.omnidim.io/api/v1");
    assert!(s.api_key.is_none());
}

#[test]
fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "d.toml",
        "[dispatch]\nrate_per_second = 2.5\nburst = 3\n[database]\npath = \"/tmp/x.db\"\n",
    );
    let s = Settings::load_with_env(Some(&f), &env(&[("DIALERD_DISPATCH__BURST", "7")])).unwrap();
    assert_eq!(s.raw.dispatch.rate_per_second, 2.5);
    assert_eq!(s.raw.dispatch.burst, 7);
    assert_eq!(s.database_path, PathBuf::from("/tmp/x.db"));
    // DIALERD_CONFIG names the file when --config is absent.
    let s =
        Settings::load_with_env(None, &env(&[("DIALERD_CONFIG", f.to_str().unwrap())])).unwrap();
    assert_eq!(s.raw.dispatch.burst, 3);
}

#[test]
fn an_unknown_key_is_an_error_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "d.toml", "[dispatch]\nrate_per_secnd = 2\n");
    let err = Settings::load_with_env(Some(&f), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("d.toml") && err.contains("rate_per_secnd"),
        "{err}"
    );
}

#[test]
fn a_wrong_type_and_malformed_toml_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "d.toml", "[dispatch]\nmax_in_flight = \"lots\"\n");
    let err = Settings::load_with_env(Some(&f), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("d.toml") && err.contains("max_in_flight"),
        "{err}"
    );
    let f = write(&dir, "e.toml", "[dispatch\n");
    let err = Settings::load_with_env(Some(&f), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("e.toml"), "{err}");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        (
            "DIALERD_CAMPAIGN_DEFAULTS__SCHEDULE",
            "every day",
            "campaign_defaults.schedule",
        ),
        (
            "DIALERD_CAMPAIGN_DEFAULTS__WINDOW",
            "9-5",
            "campaign_defaults.window",
        ),
        (
            "DIALERD_CAMPAIGN_DEFAULTS__TIMEZONE",
            "Mars/Base",
            "campaign_defaults.timezone",
        ),
        (
            "DIALERD_DISPATCH__RATE_PER_SECOND",
            "0",
            "dispatch.rate_per_second",
        ),
        (
            "DIALERD_CAMPAIGN_DEFAULTS__REGION",
            "ZZZ",
            "campaign_defaults.region",
        ),
        (
            "DIALERD_CAMPAIGN_DEFAULTS__RETRY_OUTCOMES",
            "busy,completed",
            "campaign_defaults.retry_outcomes",
        ),
        ("DIALERD_METRICS__LISTEN", "nowhere", "metrics.listen"),
    ];
    for (k, v, key) in cases {
        let err = Settings::load_with_env(None, &env(&[(k, v)])).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{k}: {err}");
        assert!(err.to_string().contains(key), "{k}: {err}");
    }
}

#[test]
fn an_api_key_in_the_file_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "d.toml", "[provider]\napi_key = \"sk-live-123\"\n");
    let err = Settings::load_with_env(Some(&f), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("DIALERD_API_KEY"), "{err}");
    assert!(!err.contains("sk-live-123"), "{err}");
}

#[test]
fn the_api_key_comes_from_env_then_file_then_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    let keyfile = write(&dir, "key", "from-file\n");
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("api_key"), "from-creds").unwrap();
    let creds_dir = creds.path().to_str().unwrap();
    let cfg = write(
        &dir,
        "d.toml",
        &format!(
            "[provider]\napi_key_file = {:?}\n",
            keyfile.to_str().unwrap()
        ),
    );

    let s = Settings::load_with_env(
        Some(&cfg),
        &env(&[
            ("DIALERD_API_KEY", "from-env"),
            ("CREDENTIALS_DIRECTORY", creds_dir),
        ]),
    )
    .unwrap();
    assert_eq!(s.api_key.unwrap().expose(), "from-env");
    let s =
        Settings::load_with_env(Some(&cfg), &env(&[("CREDENTIALS_DIRECTORY", creds_dir)])).unwrap();
    assert_eq!(s.api_key.unwrap().expose(), "from-file");
    let s = Settings::load_with_env(None, &env(&[("CREDENTIALS_DIRECTORY", creds_dir)])).unwrap();
    assert_eq!(s.api_key.unwrap().expose(), "from-creds");
    assert!(matches!(s.key_source, KeySource::Credentials(_)));
}

#[test]
fn a_missing_key_file_is_a_config_error() {
    let err = Settings::load_with_env(
        None,
        &env(&[("DIALERD_PROVIDER__API_KEY_FILE", "/nonexistent/key")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("provider.api_key_file"), "{err}");
}

#[test]
fn check_config_output_redacts_the_key() {
    let s =
        Settings::load_with_env(None, &env(&[("DIALERD_API_KEY", "sk-top-secret-42")])).unwrap();
    let out = s.redacted_toml();
    assert!(!out.contains("sk-top-secret-42"), "{out}");
    assert!(
        out.contains("[redacted]") && out.contains("rate_per_second"),
        "{out}"
    );
    assert!(!format!("{s:?}").contains("sk-top-secret-42"));
}

#[test]
fn the_shipped_config_file_documents_exactly_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dialerd.toml");
    let s = Settings::load_with_env(Some(&path), &env(&[])).unwrap();
    let shipped = toml::to_string(&s.raw).unwrap();
    let defaults = toml::to_string(&RawConfig::default()).unwrap();
    assert_eq!(
        shipped, defaults,
        "config/dialerd.toml and the built-in defaults disagree"
    );
}

#[test]
fn compliance_ships_quiet_hours_and_the_florida_and_oklahoma_rules() {
    let s = Settings::load_with_env(None, &env(&[])).unwrap();
    let c = &s.compliance;
    assert_eq!(c.quiet_hours, Some(Window::parse("08:00-21:00").unwrap()));
    for region in ["US-FL", "US-OK"] {
        let rule = c.regions[&region.parse().unwrap()];
        assert_eq!(rule.window, Some(Window::parse("08:00-20:00").unwrap()));
        assert_eq!(rule.max_calls_per_day, Some(3));
    }
}

#[test]
fn operators_add_and_override_regions_and_turn_quiet_hours_off() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "d.toml",
        "[compliance.regions.\"US-FL\"]\nwindow = \"09:00-19:00\"\n\
         [compliance.regions.\"US-TX\"]\nmax_calls_per_day = 2\n",
    );
    let s = Settings::load_with_env(
        Some(&f),
        &env(&[("DIALERD_COMPLIANCE__QUIET_HOURS", "off")]),
    )
    .unwrap();
    let c = &s.compliance;
    assert_eq!(c.quiet_hours, None);
    let fl = c.regions[&"US-FL".parse().unwrap()];
    assert_eq!(fl.window, Some(Window::parse("09:00-19:00").unwrap()));
    assert_eq!(fl.max_calls_per_day, Some(3), "kept from the shipped rule");
    let tx = c.regions[&"US-TX".parse().unwrap()];
    assert_eq!((tx.window, tx.max_calls_per_day), (None, Some(2)));
    assert!(c.regions.contains_key(&"US-OK".parse().unwrap()));
}

#[test]
fn a_bad_compliance_value_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        (
            "[compliance]\nquiet_hours = \"8-21\"\n",
            "compliance.quiet_hours",
        ),
        (
            "[compliance.regions.\"Florida\"]\nwindow = \"08:00-20:00\"\n",
            "Florida",
        ),
        (
            "[compliance.regions.\"US-GA\"]\nwindow = \"8am\"\n",
            "US-GA\".window",
        ),
    ] {
        let f = write(&dir, "bad.toml", text);
        let err = Settings::load_with_env(Some(&f), &env(&[])).unwrap_err();
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
}
