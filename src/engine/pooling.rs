//! The caller pool and the spend cap in the dispatcher: a claim round takes
//! no more contacts than the pool and the budget have room for (the others
//! are held with reason `pool`, or left due), and each try, at the instant
//! of dialing, checks the cap again and picks its caller number
//! ([`crate::store::Store::pick_caller_number`]); the reconciler's rounds
//! pause campaigns whose committed cost reached their cap.

use chrono::{DateTime, Utc};

use super::{Engine, limits};
use crate::domain::{CampaignStatus, HoldReason};
use crate::provider::DispatchRequest;
use crate::store::{
    Campaign, ClaimDecision, Claimed, PoolPick, PoolState, Release, SendResult, SpendState,
};

/// What a campaign's pool and budget allow in one claim round.
#[derive(Debug, Default, Clone)]
pub struct RoundLimits {
    /// With a caller pool: the calls it has room for (`None`: no limit),
    /// and when a contact held for want of a number is looked at again.
    pool: Option<(Option<u64>, DateTime<Utc>)>,
    /// With a spend cap and an estimate: the calls the budget has room for.
    spend: Option<u64>,
}

/// Why a claim round of a capped campaign takes nobody.
#[derive(Debug, Clone, PartialEq)]
pub enum RoundBlock {
    /// The committed cost reached the cap (the text says by how much): the
    /// campaign is paused.
    CapReached(String),
    /// Attempts already claimed and not yet sent take what the budget has left.
    BudgetTaken,
}

impl RoundLimits {
    /// The room a campaign's spend state (`spend`, with a cap) and caller
    /// pool state (`pool`) leave for one claim round at `now`, as every
    /// claim round and `dialerd plan` compute it.
    pub fn of(
        spend: Option<&SpendState>,
        estimate: Option<f64>,
        pool: Option<&PoolState>,
        now: DateTime<Utc>,
    ) -> Result<Self, RoundBlock> {
        let mut limits = Self::default();
        if let Some(spend) = spend {
            if let Some(reason) = limits::cap_reached(spend, estimate, false) {
                return Err(RoundBlock::CapReached(reason));
            }
            limits.spend = limits::spend_room(spend, estimate);
            if limits.spend == Some(0) {
                return Err(RoundBlock::BudgetTaken);
            }
        }
        if let Some(state) = pool {
            limits.pool = Some((limits::free_calls(state), limits::pool_frees_at(state, now)));
        }
        Ok(limits)
    }

    /// What becomes of a contact the calling policy would dial: `None`
    /// dial it; `Some(Some(hold))` hold it instead; `Some(None)` stop the
    /// round (the budget is spent; the next round pauses the campaign).
    pub fn admit(&mut self) -> Option<Option<ClaimDecision>> {
        if self.spend == Some(0) {
            return Some(None);
        }
        if let Some((room, until)) = &mut self.pool {
            match room {
                Some(0) => {
                    return Some(Some(ClaimDecision::Hold {
                        until: *until,
                        reason: HoldReason::Pool,
                    }));
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        if let Some(n) = &mut self.spend {
            *n -= 1;
        }
        None
    }
}

/// How a campaign's tries get their caller number and meet the spend cap.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DialLimits {
    /// The campaign's fixed `from_number_id` (without a pool).
    pub(crate) from_number_id: Option<i64>,
    /// Whether the campaign had a caller pool when the sweep began.
    pub(crate) pooled: bool,
    /// Whether the campaign had a spend cap when the sweep began.
    pub(crate) capped: bool,
}

impl DialLimits {
    /// The limits of campaign `c`.
    pub(crate) fn of(c: &Campaign) -> Self {
        Self {
            from_number_id: c.from_number_id,
            pooled: c
                .caller_pool
                .as_deref()
                .is_some_and(|p| !p.trim().is_empty()),
            capped: c.max_cost.is_some(),
        }
    }
}

impl Engine {
    /// The room of campaign `c` for one claim round; `None` when its spend
    /// cap is reached (the campaign is paused with the reason) or the
    /// attempts already claimed take what is left of it.
    pub(crate) async fn round_limits(
        &self,
        c: &Campaign,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<RoundLimits>> {
        let estimate = self.config().defaults.cost_estimate;
        let spend = match c.max_cost {
            Some(_) => self.store.spend_state(c.id).await?,
            None => None,
        };
        let pool = match c.caller_pool.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(pool) => Some(self.store.pool_state(pool, now).await?),
            None => None,
        };
        match RoundLimits::of(spend.as_ref(), estimate, pool.as_ref(), now) {
            Ok(limits) => Ok(Some(limits)),
            Err(RoundBlock::CapReached(reason)) => {
                self.pause_for_spend(c.id, &reason).await?;
                Ok(None)
            }
            // The attempts claimed and not yet sent take the rest of the
            // budget: they go out (each checked again at its try); the
            // pause follows once they are accepted.
            Err(RoundBlock::BudgetTaken) => Ok(None),
        }
    }

    /// Pauses campaign `id` (if it is still active) for its spend cap.
    async fn pause_for_spend(&self, id: i64, reason: &str) -> anyhow::Result<()> {
        let Some(c) = self.store.campaign(id).await? else {
            return Ok(());
        };
        if c.status() == CampaignStatus::Active {
            self.store
                .set_campaign_status(id, CampaignStatus::Paused, Some(reason))
                .await?;
            tracing::warn!(campaign = %c.name, %reason, "campaign paused: raise its max_cost, then resume it");
        }
        Ok(())
    }

    /// Pauses every active campaign whose committed cost reached its cap
    /// (after a reconcile round wrote new costs). Returns how many.
    pub(crate) async fn enforce_spend_caps(&self) -> anyhow::Result<u64> {
        let estimate = self.config().defaults.cost_estimate;
        let mut paused = 0;
        for (id, _) in self.store.spend_capped_campaigns().await? {
            let Some(spend) = self.store.spend_state(id).await? else {
                continue;
            };
            if let Some(reason) = limits::cap_reached(&spend, estimate, false) {
                self.pause_for_spend(id, &reason).await?;
                paused += 1;
            }
        }
        Ok(paused)
    }

    /// The campaign-wide limits at the instant of a try: the spend cap not
    /// reached, and a caller number picked from the pool (kept by the
    /// attempt's later tries) and put in `req`. `Err`: what to record
    /// instead, nothing sent.
    pub(crate) async fn limits_at_dial(
        &self,
        claim: &Claimed,
        limits: DialLimits,
        req: &mut DispatchRequest,
        picked: &mut bool,
    ) -> Result<(), SendResult> {
        if limits.capped {
            self.spend_at_dial(claim).await?;
        }
        if limits.pooled && !*picked {
            req.from_number_id = self.pick_at_dial(claim).await?.or(req.from_number_id);
            *picked = true;
        }
        Ok(())
    }

    /// The spend cap at the instant of a try: reached, the campaign is
    /// paused and the contact held `spend_cap`.
    async fn spend_at_dial(&self, claim: &Claimed) -> Result<(), SendResult> {
        let spend = self
            .store
            .spend_state(claim.campaign_id)
            .await
            .map_err(|e| self.unread("campaign's spending", &e))?;
        let estimate = self.config().defaults.cost_estimate;
        let Some(reason) = spend.and_then(|s| limits::cap_reached(&s, estimate, false)) else {
            return Ok(());
        };
        if let Err(e) = self.pause_for_spend(claim.campaign_id, &reason).await {
            tracing::error!(error = %e, "cannot pause the campaign for its spend cap");
        }
        Err(SendResult::Refused {
            error: format!("not sent: {reason}"),
            release: Release::HandBack {
                due: None,
                reason: HoldReason::SpendCap,
            },
        })
    }

    /// Picks the try's caller number from its campaign's pool, now: `Ok(None)`
    /// when the campaign no longer has a pool (its own `from_number_id`
    /// applies); no number free, the contact is held `pool` until one frees up.
    async fn pick_at_dial(&self, claim: &Claimed) -> Result<Option<i64>, SendResult> {
        let now = self.clock.now();
        let pick = self
            .store
            .pick_caller_number(claim.attempt_id, now, |pool| {
                limits::pick_number(pool, &claim.to_number)
            })
            .await
            .map_err(|e| self.unread("caller pool", &e))?;
        match pick {
            PoolPick::Picked(id) => Ok(Some(id)),
            PoolPick::NoPool => Ok(None),
            PoolPick::NoneFree(pool) => {
                let why = limits::pool_hold_text(&pool, now);
                tracing::info!(%why, "no caller number free; nothing sent");
                Err(SendResult::Refused {
                    error: format!("not sent: {why}"),
                    release: Release::HandBack {
                        due: Some(limits::pool_frees_at(&pool, now)),
                        reason: HoldReason::Pool,
                    },
                })
            }
            PoolPick::Gone => Err(SendResult::Refused {
                error: "not sent: the attempt is no longer sending".into(),
                release: Release::Untouched,
            }),
        }
    }

    /// A check that could not read the database: nothing is sent.
    fn unread(&self, what: &str, e: &sqlx::Error) -> SendResult {
        tracing::error!(error = %e, "the dial-time check cannot read the {what}; not sent");
        SendResult::NotSent {
            error: format!("not sent: the dial-time check could not read the {what} ({e})"),
            retry_at: self.clock.now(),
        }
    }
}
