//! What roomcast needs to exist in Pub/Sub, and making sure it does: topics
//! and subscriptions are created if missing, with the settings of
//! [`subscription_settings`]; creation races between processes and
//! least-privilege credentials are tolerated. Also the cheap reachability
//! [`probe`] behind `connect` and `healthy`.
//!
//! An existing subscription is reused as it is (its settings are not
//! changed): if it is attached to another topic that is an error, and if
//! message ordering is off that is a warning (room order is then not kept).

use std::time::Duration;

use gcloud_pubsub::client::Client;
use gcloud_pubsub::subscription::{Subscription, SubscriptionConfig};
use google_cloud_gax::grpc::{Code, Status};
use google_cloud_gax::retry::RetrySetting;
use google_cloud_googleapis::pubsub::v1::ExpirationPolicy;
use roomcast_bus::{BusError, Mode};

use crate::Config;

/// How long unacked messages are kept on a fan-out subscription. Pub/Sub
/// requires a subscription's expiration period to exceed its retention (the
/// default retention, 7 days, would reject the 1-day expiration), and a
/// realtime event older than this is of no use to a node anyway.
pub const FAN_OUT_RETENTION: Duration = Duration::from_secs(3_600);

/// Topic looked up by [`probe`]. It need not exist: "not found" is an answer
/// from the engine too.
const PROBE_TOPIC: &str = "roomcast-probe";

/// A `BusError::Unavailable` naming what failed.
pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("Pub/Sub {what}: {e}"))
}

/// Run `call`, bounded by `limit`; a timeout is an error naming `what`.
pub(crate) async fn bounded<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<Result<T, Status>, BusError> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| unavailable(what, format!("no answer within {limit:?}")))
}

/// The settings roomcast creates a subscription with:
///
/// | | fan-out | queue |
/// |---|---|---|
/// | message ordering | on | on |
/// | ack deadline | `ack_deadline_secs` | `ack_deadline_secs` |
/// | expiration | `fan_out_expiration_days` idle | never |
/// | retention of unacked messages | [`FAN_OUT_RETENTION`] | Pub/Sub default (7 days) |
///
/// A queue subscription never expires: its backlog is work for the group,
/// kept however long the group is away.
pub fn subscription_settings(cfg: &Config, mode: &Mode) -> SubscriptionConfig {
    let (expiration_policy, message_retention_duration) = match mode {
        Mode::FanOut { .. } => (
            ExpirationPolicy {
                ttl: Some(prost_types::Duration {
                    seconds: cfg.fan_out_ttl_secs(),
                    nanos: 0,
                }),
            },
            Some(FAN_OUT_RETENTION),
        ),
        // A policy without a ttl: the subscription never expires.
        Mode::Queue { .. } => (ExpirationPolicy { ttl: None }, None),
    };
    SubscriptionConfig {
        enable_message_ordering: true,
        ack_deadline_seconds: cfg.ack_deadline(),
        expiration_policy: Some(expiration_policy),
        message_retention_duration,
        ..SubscriptionConfig::default()
    }
}

/// Create `topic` unless it exists. "Already exists" is success (another
/// process won the race); "permission denied" means these credentials may
/// only publish/subscribe, so the topic is assumed to have been created up
/// front (if it was not, publishing and subscribing fail with "not found").
pub(crate) async fn ensure_topic(
    client: &Client,
    topic: &str,
    limit: Duration,
) -> Result<(), BusError> {
    let what = format!("topic {topic}");
    match bounded(limit, &what, client.topic(topic).create(None, None)).await? {
        Ok(()) => {
            tracing::info!(topic, "created Pub/Sub topic");
            Ok(())
        }
        Err(e) if e.code() == Code::AlreadyExists => Ok(()),
        Err(e) if e.code() == Code::PermissionDenied => {
            tracing::warn!(
                topic,
                "may not create Pub/Sub topics; assuming this one exists"
            );
            Ok(())
        }
        Err(e) => Err(unavailable(&what, e)),
    }
}

/// Create subscription `name` on `topic` with `settings` unless it exists;
/// check an existing one (see the module docs). Tolerates the same races and
/// missing permissions as [`ensure_topic`].
pub(crate) async fn ensure_subscription(
    client: &Client,
    name: &str,
    topic: &str,
    settings: SubscriptionConfig,
    limit: Duration,
) -> Result<Subscription, BusError> {
    let what = format!("subscription {name}");
    let created = client.create_subscription(name, topic, settings, None);
    match bounded(limit, &what, created).await? {
        Ok(sub) => {
            tracing::info!(subscription = name, topic, "created Pub/Sub subscription");
            return Ok(sub);
        }
        Err(e) if e.code() == Code::AlreadyExists => {}
        Err(e) if e.code() == Code::PermissionDenied => {
            tracing::warn!(
                subscription = name,
                "may not create Pub/Sub subscriptions; assuming this one exists"
            );
            return Ok(client.subscription(name));
        }
        Err(e) => return Err(unavailable(&what, e)),
    }
    let sub = client.subscription(name);
    match bounded(limit, &what, sub.config(None)).await? {
        Ok((attached_to, existing)) => {
            let wanted = client.fully_qualified_topic_name(topic);
            if attached_to != wanted {
                return Err(unavailable(
                    &what,
                    format!("it exists but is attached to {attached_to}, not {wanted}"),
                ));
            }
            if !existing.enable_message_ordering {
                tracing::warn!(
                    subscription = name,
                    "reusing a Pub/Sub subscription without message ordering: room order is not kept"
                );
            }
            tracing::info!(subscription = name, topic, "reusing Pub/Sub subscription");
        }
        Err(e) if e.code() == Code::PermissionDenied => {}
        Err(e) => return Err(unavailable(&what, e)),
    }
    Ok(sub)
}

/// One cheap call (get a topic, without retries): any answer from the engine,
/// including "not found" or "permission denied", shows it is reachable;
/// transport errors, "unauthenticated" and silence past `limit` do not.
pub(crate) async fn probe(client: &Client, limit: Duration) -> Result<(), String> {
    let once = RetrySetting {
        take: 0,
        ..RetrySetting::default()
    };
    let topic = client.topic(PROBE_TOPIC);
    match tokio::time::timeout(limit, topic.exists(Some(once))).await {
        Err(_) => Err(format!("no answer within {limit:?}")),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if matches!(e.code(), Code::NotFound | Code::PermissionDenied) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_subscriptions_expire_and_keep_order() {
        let cfg = Config {
            fan_out_expiration_days: 2,
            ack_deadline_secs: 20,
            ..Config::default()
        };
        let s = subscription_settings(&cfg, &Mode::FanOut { node: "n".into() });
        assert!(s.enable_message_ordering);
        assert_eq!(s.ack_deadline_seconds, 20);
        let ttl = s.expiration_policy.unwrap().ttl.unwrap();
        assert_eq!(ttl.seconds, 2 * 86_400);
        let retention = s.message_retention_duration.unwrap();
        assert!(
            retention.as_secs() < 86_400,
            "retention stays below the shortest expiration Pub/Sub allows"
        );
    }

    #[test]
    fn queue_subscriptions_never_expire() {
        let s = subscription_settings(
            &Config::default(),
            &Mode::Queue {
                group: "api".into(),
            },
        );
        assert!(s.enable_message_ordering);
        assert_eq!(s.ack_deadline_seconds, 10);
        assert_eq!(s.expiration_policy, Some(ExpirationPolicy { ttl: None }));
        assert_eq!(s.message_retention_duration, None);
    }
}
