use std::collections::HashMap;

use super::*;

fn raw(url: Option<&str>, secret_file: Option<&Path>) -> RawWebhooks {
    RawWebhooks {
        url: url.map(String::from),
        secret_file: secret_file.map(|p| p.display().to_string()),
        ..RawWebhooks::default()
    }
}

fn key_of(e: ConfigError) -> String {
    match e {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected an invalid key, got {other}"),
    }
}

#[test]
fn webhooks_are_off_without_a_url_and_every_event_is_sent_by_default() {
    let env = HashMap::new();
    assert!(
        WebhookSettings::from_raw(&RawWebhooks::default(), &env)
            .unwrap()
            .is_none()
    );
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "abc\n").unwrap();
    let s = WebhookSettings::from_raw(&raw(Some("http://127.0.0.1:9/hook"), Some(&secret)), &env)
        .unwrap()
        .unwrap();
    assert_eq!(s.events, EVENTS.to_vec());
    assert_eq!(s.max_age, Duration::from_secs(259_200));
    assert_eq!(s.secret, Secret::new("abc").unwrap());
}

#[test]
fn a_url_without_a_secret_is_refused_naming_the_key() {
    let env = HashMap::new();
    let e =
        WebhookSettings::from_raw(&raw(Some("http://127.0.0.1:9/hook"), None), &env).unwrap_err();
    assert!(e.to_string().contains("webhook_secret"), "{e}");
    assert_eq!(key_of(e), "webhooks.secret_file");
}

#[test]
fn the_secret_is_read_from_the_systemd_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webhook_secret"), "from-creds").unwrap();
    let env = HashMap::from([(
        "CREDENTIALS_DIRECTORY".to_string(),
        dir.path().display().to_string(),
    )]);
    let s = WebhookSettings::from_raw(&raw(Some("https://crm.example/hook"), None), &env)
        .unwrap()
        .unwrap();
    assert_eq!(s.secret, Secret::new("from-creds").unwrap());
    assert_eq!(s.secret_source, dir.path().join("webhook_secret"));
}

#[test]
fn unknown_events_and_bad_urls_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "abc").unwrap();
    let env = HashMap::new();
    let mut r = raw(Some("http://127.0.0.1:9/hook"), Some(&secret));
    r.events = vec!["attempt.outcome,call.made".into()];
    assert_eq!(
        key_of(WebhookSettings::from_raw(&r, &env).unwrap_err()),
        "webhooks.events"
    );
    let r = raw(Some("ftp://127.0.0.1/hook"), Some(&secret));
    assert_eq!(
        key_of(WebhookSettings::from_raw(&r, &env).unwrap_err()),
        "webhooks.url"
    );
    let mut r = raw(Some("http://127.0.0.1:9/hook"), Some(&secret));
    r.events = vec!["contact.final, dnc.opt_out".into()];
    let s = WebhookSettings::from_raw(&r, &env).unwrap().unwrap();
    assert_eq!(s.events, vec!["contact.final", "dnc.opt_out"]);
}

#[test]
fn webhook_events_can_be_chosen_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "abc").unwrap();
    let env = HashMap::from([
        (
            "DIALERD_WEBHOOKS__URL".to_string(),
            "http://127.0.0.1:9/hook".to_string(),
        ),
        (
            "DIALERD_WEBHOOKS__SECRET_FILE".to_string(),
            secret.display().to_string(),
        ),
        (
            "DIALERD_WEBHOOKS__EVENTS".to_string(),
            "attempt.outcome,campaign.completed".to_string(),
        ),
    ]);
    let s = crate::config::Settings::load_with_env(None, &env).unwrap();
    let w = s.webhooks.unwrap();
    assert_eq!(w.events, vec!["attempt.outcome", "campaign.completed"]);
    assert!(!format!("{:?}", s.raw).contains("abc"));
}
