//! Each worker's typed section of the configuration, published again on
//! every reload.

use tokio::sync::watch;

use crate::config::{CampaignDefaults, DaemonSettings, InboxSettings, ReconcileSettings, Settings};
use crate::webhooks::WebhookSettings;

/// The senders of every worker's section; [`SettingsFeed::publish`] on a
/// reload, each worker holds the receivers it needs.
#[derive(Debug)]
pub struct SettingsFeed {
    daemon: watch::Sender<DaemonSettings>,
    reconcile: watch::Sender<ReconcileSettings>,
    inbox: watch::Sender<InboxSettings>,
    defaults: watch::Sender<CampaignDefaults>,
    webhooks: watch::Sender<Option<WebhookSettings>>,
}

impl SettingsFeed {
    /// A feed holding `s`'s sections.
    pub fn new(s: &Settings) -> Self {
        Self {
            daemon: watch::Sender::new(s.daemon()),
            reconcile: watch::Sender::new(s.reconcile()),
            inbox: watch::Sender::new(s.inbox()),
            defaults: watch::Sender::new(s.campaign_defaults.clone()),
            webhooks: watch::Sender::new(s.webhooks.clone()),
        }
    }

    /// Replaces every section with `s`'s (a reload).
    pub fn publish(&self, s: &Settings) {
        self.daemon.send_replace(s.daemon());
        self.reconcile.send_replace(s.reconcile());
        self.inbox.send_replace(s.inbox());
        self.defaults.send_replace(s.campaign_defaults.clone());
        self.webhooks.send_replace(s.webhooks.clone());
    }

    /// `[daemon]`.
    pub fn daemon(&self) -> watch::Receiver<DaemonSettings> {
        self.daemon.subscribe()
    }

    /// `[reconcile]`.
    pub fn reconcile(&self) -> watch::Receiver<ReconcileSettings> {
        self.reconcile.subscribe()
    }

    /// `[inbox]`.
    pub fn inbox(&self) -> watch::Receiver<InboxSettings> {
        self.inbox.subscribe()
    }

    /// `[campaign_defaults]`.
    pub fn defaults(&self) -> watch::Receiver<CampaignDefaults> {
        self.defaults.subscribe()
    }

    /// `[webhooks]`, `None` when off.
    pub fn webhooks(&self) -> watch::Receiver<Option<WebhookSettings>> {
        self.webhooks.subscribe()
    }
}
