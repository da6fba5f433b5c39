//! Accepted events: the dedupe claim with its envelope, its post's confirmation, take-over and
//! release.

use super::*;
use crate::store::EventLog;

fn event_pk(tenant_id: &str, event_id: &str) -> String {
    format!("E#{tenant_id}#{event_id}")
}

/// The key of a post's confirmation, which confirms every claim naming the post.
fn post_key(tenant_id: &str, post: &str) -> (String, &'static str) {
    (format!("P#{tenant_id}#{post}"), "P")
}

impl DynamoStore {
    /// The put of an accepted event's item: its envelope and dedupe window, kept for
    /// redelivery as long as its deliveries. A claim adds its `claimed_ms` and condition.
    fn event_put(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(event_pk(tenant_id, event_id)))
            .item("SK", s("E"))
            .item("envelope", s(envelope))
            .item("dedupe_until", n(until.unix_timestamp()))
            .item("expires_at", n(now.unix_timestamp() + EVENT_RETENTION_SECS))
    }

    /// An update of an accepted event's item (its claim state).
    fn event_update(&self, tenant_id: &str, event_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(event_pk(tenant_id, event_id)))
            .key("SK", s("E"))
    }
}

#[async_trait]
impl EventLog for DynamoStore {
    async fn claim_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        post: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Claim> {
        // The dedupe window is checked by value: TTL deletion lags, and the item outlives the
        // window anyway (it holds the event for redelivery).
        let put = self
            .event_put(tenant_id, event_id, envelope, until, now)
            .item("claimed_ms", n(unix_ms(now)))
            .item("claimed_by", s(post))
            .condition_expression("attribute_not_exists(PK) OR dedupe_until <= :now")
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        if written(put)? {
            return Ok(Claim::Won);
        }
        // A live claim: read it (rare: duplicates only). A `C` item beside it with the same
        // window is a confirmation as earlier releases wrote them, one per claim.
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(event_pk(tenant_id, event_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?
            .items
            .unwrap_or_default();
        let sk = |item: &&Item| item.get("SK").and_then(|v| v.as_s().ok()).cloned();
        let number = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let Some(claim) = items.iter().find(|i| sk(i).as_deref() == Some("E")) else {
            // Released and expired in between: the post retries as a fresh one.
            return Err(Error::InFlight(1));
        };
        let window = number(claim, "dedupe_until");
        let mut confirmed = items
            .iter()
            .find(|i| sk(i).as_deref() == Some("C"))
            .is_some_and(|c| number(c, "dedupe_until") == window);
        if let Some(post) = claim.get("claimed_by").and_then(|v| v.as_s().ok()) {
            if !confirmed && number(claim, "claimed_ms").is_some() {
                let (pk, sk) = post_key(tenant_id, post);
                confirmed = self.get(pk, sk).await?.is_some();
            }
        }
        // Claims written before claims had states carry no `claimed_ms`: they were confirmed.
        Ok(match number(claim, "claimed_ms") {
            Some(ms) if !confirmed => Claim::Pending {
                envelope: claim
                    .get("envelope")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| Error::Store("event item without envelope".into()))?,
                claimed_at: from_unix_ms(ms),
                until: window
                    .and_then(|w| OffsetDateTime::from_unix_timestamp(w).ok())
                    .unwrap_or(now),
            },
            _ => Claim::Confirmed,
        })
    }

    async fn confirm_post(&self, tenant_id: &str, post: &str, until: OffsetDateTime) -> Result<()> {
        // One small item for the whole post, expiring with the latest window it confirms:
        // confirming rewrites no claim.
        let (pk, sk) = post_key(tenant_id, post);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(pk))
            .item("SK", s(sk))
            .item("expires_at", n(until.unix_timestamp()))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn take_over_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        post: &str,
        seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let update = self
            .event_update(tenant_id, event_id)
            .update_expression("SET claimed_ms = :now, claimed_by = :post")
            .condition_expression("claimed_ms = :seen")
            .expression_attribute_values(":now", n(unix_ms(now)))
            .expression_attribute_values(":post", s(post))
            .expression_attribute_values(":seen", n(unix_ms(seen)))
            .send()
            .await;
        written(update)
    }

    async fn keep_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<()> {
        // The claim's item without `claimed_ms`: confirmed as written, so no post confirms it.
        self.event_put(tenant_id, event_id, envelope, until, now)
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn get_event(&self, tenant_id: &str, event_id: &str) -> Result<Option<String>> {
        Ok(self
            .get(event_pk(tenant_id, event_id), "E")
            .await?
            .and_then(|item| item.get("envelope")?.as_s().ok().cloned()))
    }

    async fn release_event_id(&self, tenant_id: &str, event_id: &str) -> Result<()> {
        let update = self
            .event_update(tenant_id, event_id)
            .update_expression("SET claimed_ms = :epoch REMOVE claimed_by")
            .condition_expression("attribute_exists(claimed_ms)")
            .expression_attribute_values(":epoch", n(0))
            .send()
            .await;
        written(update).map(drop)
    }
}
