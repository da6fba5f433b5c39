//! Behaviour every `Store` and `Queue` implementation must have, run against the in-memory
//! ones and against DynamoDB/SQS on moto alike.

use herald_shared::delivery::{delivery_id, Attempt, Delivery, DeliveryStatus};
use herald_shared::event::{Event, EventEnvelope};
use herald_shared::queue::{Message, Queue};
use herald_shared::scope::{Scope, Scopes};
use herald_shared::secret::Secret;
use herald_shared::store::{ApiKey, Claim, Page, Store, Tenant};
use herald_shared::webhook::{Filters, Kind, SigningSecret, Webhook, WebhookSpec};
use herald_shared::Error;
use std::time::Duration;
use time::OffsetDateTime;

pub fn webhook(tenant: &str, id: &str, enabled: bool) -> Webhook {
    let now = OffsetDateTime::now_utc();
    Webhook {
        id: id.to_string(),
        tenant_id: tenant.to_string(),
        spec: WebhookSpec {
            name: format!("name-{id}"),
            description: String::new(),
            url: "https://hooks.example.com/x".into(),
            kind: Kind::Standard,
            events: vec!["experiments.done".into()],
            filters: Filters::default(),
            headers: vec![],
            include_result: false,
            metadata: Default::default(),
            enabled,
            secret: None,
        },
        disabled_reason: None,
        failing_since: None,
        failures: 0,
        secrets: vec![SigningSecret {
            secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            expires_at: None,
        }],
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

pub async fn store_contract<S: Store + herald_shared::store::SweepIndex>(store: &S) {
    let now = OffsetDateTime::now_utc();

    // Tenants and keys: keys resolve by hash only.
    store
        .put_tenant(&Tenant {
            id: "tn_a".into(),
            name: "a".into(),
            created_at: now,
        })
        .await
        .unwrap();
    store
        .put_api_key(&api_key("tn_a", "key_1", "h1", Scopes::ALL))
        .await
        .unwrap();
    assert_eq!(tenant_of(store, "h1").await.as_deref(), Some("tn_a"));
    assert_eq!(tenant_of(store, "h2").await, None);

    // Webhooks: create, conflict, get, scoping, listing, enabled filter, delete.
    let ids: Vec<String> = (0..5).map(|i| format!("wh_0{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(store
            .create_webhook(&webhook("tn_a", id, i != 2), 5)
            .await
            .unwrap());
    }
    assert!(
        !store
            .create_webhook(&webhook("tn_a", "wh_05", true), 5)
            .await
            .unwrap(),
        "at the limit nothing is created"
    );
    assert!(store
        .create_webhook(&webhook("tn_b", "wh_09", true), 1)
        .await
        .unwrap());
    assert!(matches!(
        store
            .create_webhook(&webhook("tn_a", "wh_00", true), 10)
            .await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.get_webhook("tn_a", "wh_05").await.unwrap(), None);
    let got = store
        .get_webhook("tn_a", "wh_01")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        got,
        webhook("tn_a", "wh_01", true).with_times(got.created_at, got.updated_at)
    );
    assert_eq!(
        got.secrets[0].secret.expose(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    );
    assert!(
        store.get_webhook("tn_b", "wh_01").await.unwrap().is_none(),
        "other tenant sees nothing"
    );

    let first = store.list_webhooks("tn_a", 2, None).await.unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|w| w.id.as_str())
            .collect::<Vec<_>>(),
        ["wh_00", "wh_01"]
    );
    assert!(first.more);
    let second = store.list_webhooks("tn_a", 2, Some("wh_01")).await.unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|w| w.id.as_str())
            .collect::<Vec<_>>(),
        ["wh_02", "wh_03"]
    );
    assert!(second.more);
    let last = store.list_webhooks("tn_a", 2, Some("wh_03")).await.unwrap();
    assert_eq!(
        last.items.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        ["wh_04"]
    );
    assert!(!last.more);
    let exact = store.list_webhooks("tn_a", 5, None).await.unwrap();
    assert_eq!(exact.items.len(), 5);
    assert!(!exact.more, "a full last page says there is no more");

    let mut subscribed: Vec<(String, bool)> = store
        .subscribed_webhooks("tn_a")
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.id, w.spec.enabled))
        .collect();
    subscribed.sort();
    assert_eq!(
        subscribed,
        [
            ("wh_00", true),
            ("wh_01", true),
            ("wh_02", false),
            ("wh_03", true),
            ("wh_04", true)
        ]
        .map(|(id, on)| (id.to_string(), on)),
        "every webhook of the tenant, the disabled one too (it holds what it matches)"
    );

    assert!(
        !store.delete_webhook("tn_b", "wh_00").await.unwrap(),
        "other tenant cannot delete"
    );
    assert!(store.delete_webhook("tn_a", "wh_00").await.unwrap());
    assert!(!store.delete_webhook("tn_a", "wh_00").await.unwrap());
    assert!(
        !store.delete_webhook("tn_b", "wh_00").await.unwrap(),
        "deleting nothing, or another tenant's, frees no place"
    );
    assert!(
        store
            .create_webhook(&webhook("tn_a", "wh_05", true), 5)
            .await
            .unwrap(),
        "a deleted webhook frees its place under the limit"
    );
    assert!(!store
        .create_webhook(&webhook("tn_a", "wh_06", true), 5)
        .await
        .unwrap());
    assert!(store.delete_webhook("tn_a", "wh_05").await.unwrap());
    assert!(store.get_webhook("tn_a", "wh_00").await.unwrap().is_none());

    // Deliveries: put, replace, get with scoping, newest-first listing per webhook.
    for i in 0..3 {
        let mut d = Delivery::new(
            format!("dl_0{i}").into(),
            "tn_a",
            format!("evt_{i}"),
            "jobs.failed",
            "wh_01",
            now,
        );
        d.record(
            Attempt {
                at: now,
                status_code: Some(500),
                duration_ms: 3,
                error: None,
                response_body: Some("oops".into()),
            },
            None,
        );
        store.put_delivery(&d).await.unwrap();
    }
    store
        .put_delivery(&Delivery::new(
            "dl_99".into(),
            "tn_a",
            "evt_x",
            "jobs.failed",
            "wh_03",
            now,
        ))
        .await
        .unwrap();
    let d = store
        .get_delivery("tn_a", "dl_01")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts[0].status_code, Some(500));
    assert_eq!(d.attempts[0].response_body.as_deref(), Some("oops"));
    assert!(store.get_delivery("tn_b", "dl_01").await.unwrap().is_none());
    let mut replaced = d.clone();
    replaced.status = DeliveryStatus::Succeeded;
    store.put_delivery(&replaced).await.unwrap();
    assert_eq!(
        store
            .get_delivery("tn_a", "dl_01")
            .await
            .unwrap()
            .unwrap()
            .status,
        DeliveryStatus::Succeeded
    );

    let page = store
        .list_deliveries("tn_a", "wh_01", 2, None)
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|d| &*d.id).collect::<Vec<_>>(),
        ["dl_02", "dl_01"]
    );
    assert!(page.more);
    let rest = store
        .list_deliveries("tn_a", "wh_01", 2, Some("dl_01"))
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|d| &*d.id).collect::<Vec<_>>(),
        ["dl_00"]
    );
    assert!(!rest.more);
    assert!(store
        .list_deliveries("tn_b", "wh_01", 10, None)
        .await
        .unwrap()
        .items
        .is_empty());

    // Creation only where no delivery exists: what holding one writes.
    let mut fresh = Delivery::new("dl_h1".into(), "tn_a", "evt_h", "jobs.failed", "wh_h", now);
    fresh.hold();
    assert!(store.create_delivery(&fresh).await.unwrap());
    let mut other = fresh.clone();
    other.status = DeliveryStatus::Succeeded;
    assert!(
        !store.create_delivery(&other).await.unwrap(),
        "never over one that exists"
    );
    let kept = store.get_delivery("tn_a", "dl_h1").await.unwrap().unwrap();
    assert_eq!((kept.status, kept.sweep_at), (DeliveryStatus::Held, None));

    // Recovery jobs: read by their tenant only, replaced whole, listed for the sweep while
    // running.
    {
        use herald_shared::recovery::{Recovery, RecoveryState};
        let mut job = Recovery::new(
            "tn_a",
            "wh_01",
            now - time::Duration::minutes(1),
            now,
            None,
            now,
        );
        store.put_recovery(&job).await.unwrap();
        assert_eq!(
            store.get_recovery("tn_a", &job.id).await.unwrap(),
            Some(job.clone())
        );
        assert_eq!(store.get_recovery("tn_b", &job.id).await.unwrap(), None);
        let running = |found: Vec<Recovery>, id: &str| found.iter().any(|r| r.id == id);
        assert!(running(
            store.running_recoveries(100).await.unwrap(),
            &job.id
        ));
        job.state = RecoveryState::Done;
        job.cursor = Some("dl_x".into());
        job.queued = 3;
        store.put_recovery(&job).await.unwrap();
        assert_eq!(
            store.get_recovery("tn_a", &job.id).await.unwrap(),
            Some(job.clone())
        );
        assert!(
            !running(store.running_recoveries(100).await.unwrap(), &job.id),
            "a job done is not the sweep's any more"
        );
    }

    // A webhook's counts per hour: adds to one hour sum; read from an hour on, oldest first;
    // by tenant and webhook only.
    {
        use herald_shared::stats::{hour_of, Counts};
        let hour = hour_of(now);
        let earlier = hour - time::Duration::hours(30);
        let one = |succeeded, failed| Counts {
            succeeded,
            failed,
            ..Counts::default()
        };
        store
            .add_counts("tn_a", "wh_st", earlier, &one(9, 0))
            .await
            .unwrap();
        // One after another: DynamoDB applies each `ADD` to the item atomically, but moto's
        // threaded server does not, and concurrent adds there can lose one another.
        for _ in 0..5 {
            store
                .add_counts("tn_a", "wh_st", hour, &one(2, 1))
                .await
                .unwrap();
        }
        store
            .add_counts("tn_b", "wh_st", hour, &one(100, 0))
            .await
            .unwrap();
        store
            .add_counts("tn_a", "wh_other", hour, &one(100, 0))
            .await
            .unwrap();
        assert_eq!(
            store.counts("tn_a", "wh_st", earlier).await.unwrap(),
            vec![(earlier, one(9, 0)), (hour, one(10, 5))]
        );
        assert_eq!(
            store
                .counts("tn_a", "wh_st", earlier + time::Duration::hours(1))
                .await
                .unwrap(),
            vec![(hour, one(10, 5))],
            "from the hour asked on"
        );
        assert_eq!(
            store.counts("tn_c", "wh_st", earlier).await.unwrap(),
            vec![]
        );
    }

    // Attempt leases: one run at a time, only on the attempt count it read, none once
    // succeeded, none across tenants; a lapsed lease can be taken over.
    let secs = time::Duration::seconds;
    // A copy of `d` as a run holding it until `until` would write it.
    let leased = |d: &Delivery, until: OffsetDateTime| Delivery {
        leased_until: Some(until),
        ..d.clone()
    };
    let answered = |code: u16| Attempt {
        at: now,
        status_code: Some(code),
        duration_ms: 3,
        error: None,
        response_body: None,
    };
    let fresh = leased(
        &Delivery::new("dl_l1".into(), "tn_a", "evt_l", "jobs.failed", "wh_09", now),
        now + secs(60),
    );
    assert!(
        store.lease_delivery(&fresh, now).await.unwrap(),
        "a new delivery is leased"
    );
    let stored = store.get_delivery("tn_a", "dl_l1").await.unwrap().unwrap();
    assert_eq!(stored.leased_until, fresh.leased_until);
    assert_eq!(stored.status, DeliveryStatus::Pending);
    assert!(
        !store.lease_delivery(&fresh, now).await.unwrap(),
        "a live lease is not taken twice"
    );
    assert!(
        !store.lease_delivery(&fresh, now + secs(59)).await.unwrap(),
        "not even a second before it lapses"
    );
    let mut other_tenant = fresh.clone();
    other_tenant.tenant_id = "tn_b".into();
    assert!(!store
        .lease_delivery(&other_tenant, now + secs(61))
        .await
        .unwrap());
    let takeover = leased(&fresh, now + secs(200));
    assert!(
        store
            .lease_delivery(&takeover, now + secs(61))
            .await
            .unwrap(),
        "a lapsed lease is taken over"
    );
    let mut recorded = takeover.clone();
    recorded.record(answered(500), Some(now + secs(5)));
    assert_eq!(
        recorded.leased_until, None,
        "recording gives the lease back"
    );
    store.put_delivery(&recorded).await.unwrap();
    assert!(
        !store
            .lease_delivery(&leased(&fresh, now + secs(60)), now)
            .await
            .unwrap(),
        "a run that read zero attempts cannot lease the second"
    );
    let mut next = leased(&recorded, now + secs(60));
    assert!(store.lease_delivery(&next, now).await.unwrap());
    next.record(answered(200), None);
    store.put_delivery(&next).await.unwrap();
    assert!(
        !store
            .lease_delivery(&leased(&next, now + secs(60)), now)
            .await
            .unwrap(),
        "a succeeded delivery is never leased again"
    );
    let stored = store.get_delivery("tn_a", "dl_l1").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts.len(), stored.leased_until),
        (DeliveryStatus::Succeeded, 2, None)
    );
    let mut failed = Delivery::new("dl_l2".into(), "tn_a", "evt_m", "jobs.failed", "wh_09", now);
    failed.status = DeliveryStatus::Failed;
    failed.next_attempt_at = None;
    store.put_delivery(&failed).await.unwrap();
    assert!(
        !store
            .lease_delivery(&leased(&failed, now + secs(60)), now)
            .await
            .unwrap(),
        "a failed delivery is final: only a redelivery (which makes it pending) reopens it"
    );

    // The sweep's reading: deliveries of every tenant by sweep time, soonest first, none
    // without one; a delivery that settles leaves it.
    let swept_by = |id: &str, tenant: &str, at: OffsetDateTime| Delivery {
        sweep_at: Some(at),
        ..Delivery::new(id.into(), tenant, "evt_s", "jobs.failed", "wh_10", now)
    };
    let mut soon = swept_by("dl_s1", "tn_a", now + secs(10));
    for d in [
        &soon,
        &swept_by("dl_s2", "tn_b", now + secs(5)),
        &swept_by("dl_s3", "tn_a", now + secs(3600)),
    ] {
        store.put_delivery(d).await.unwrap();
    }
    let due = |before: OffsetDateTime, limit: usize| async move {
        let found = store.due_for_sweep(before, limit).await.unwrap();
        found
            .iter()
            .map(|d| d.id.to_string())
            .filter(|id| id.starts_with("dl_s"))
            .collect::<Vec<_>>()
    };
    assert_eq!(due(now + secs(10), 10).await, ["dl_s2", "dl_s1"]);
    assert_eq!(due(now + secs(10), 1).await, ["dl_s2"]);
    assert!(due(now, 10).await.is_empty());
    soon.record(answered(200), None);
    assert_eq!(
        soon.sweep_at, None,
        "a settled delivery has nothing to sweep"
    );
    store.put_delivery(&soon).await.unwrap();
    assert_eq!(due(now + secs(3600), 10).await, ["dl_s2", "dl_s3"]);

    // Ids that name their webhook (kept under its log) and one that names none (kept by id, as
    // ids were made before they named their webhook): got, leased and swept alike, and listed
    // together, newest first.
    let t0 = 1_796_000_000_000u64;
    let hook = format!("wh_{}", ulid::Ulid::from_parts(t0, 1));
    let made = |ms: u64| delivery_id(ulid::Ulid::from_parts(t0 + ms, 9), &hook);
    let named = [made(0), made(2000), made(3000)];
    let short: std::sync::Arc<str> = made(1000)[..29].into();
    assert!(named.iter().all(|id| id.len() == 55));
    for id in named.iter().chain([&short]) {
        let d = Delivery::new(
            id.clone(),
            "tn_a",
            "evt_n",
            "jobs.failed",
            hook.as_str(),
            now,
        );
        store.put_delivery(&d).await.unwrap();
    }
    let listed = |page: Page<Delivery>| {
        let ids: Vec<String> = page.items.iter().map(|d| d.id.to_string()).collect();
        (ids, page.more)
    };
    let all = [&named[2], &named[1], &short, &named[0]].map(|id| id.to_string());
    assert_eq!(
        listed(
            store
                .list_deliveries("tn_a", &hook, 10, None)
                .await
                .unwrap()
        ),
        (all.to_vec(), false)
    );
    assert_eq!(
        listed(store.list_deliveries("tn_a", &hook, 2, None).await.unwrap()),
        (all[..2].to_vec(), true)
    );
    assert_eq!(
        listed(
            store
                .list_deliveries("tn_a", &hook, 2, Some(&named[1]))
                .await
                .unwrap()
        ),
        (all[2..].to_vec(), false)
    );
    for id in named.iter().chain([&short]) {
        let got = store.get_delivery("tn_a", id).await.unwrap();
        assert_eq!(got.map(|d| d.id), Some(id.clone()));
        assert!(store.get_delivery("tn_b", id).await.unwrap().is_none());
    }
    let mut first = store
        .get_delivery("tn_a", &named[0])
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .lease_delivery(&leased(&first, now + secs(60)), now)
        .await
        .unwrap());
    assert!(
        !store
            .lease_delivery(&leased(&first, now + secs(60)), now)
            .await
            .unwrap(),
        "one lease at a time under the webhook's log too"
    );
    first.sweep_at = Some(now + secs(1));
    store.put_delivery(&first).await.unwrap();
    let found = store.due_for_sweep(now + secs(2), 100).await.unwrap();
    assert!(
        found.iter().any(|d| d.id == first.id),
        "the sweep reads a delivery kept under its webhook's log"
    );
    first.record(answered(200), None);
    store.put_delivery(&first).await.unwrap();

    // Replacement over what was read: only while the stored delivery is still that one.
    let mut reopened = failed.clone();
    reopened.status = DeliveryStatus::Pending;
    reopened.next_attempt_at = Some(now);
    let mut stale = failed.clone();
    stale.status = DeliveryStatus::Retrying;
    assert!(
        !store
            .replace_delivery(&reopened, &stale, now)
            .await
            .unwrap(),
        "another status was read: nothing is written"
    );
    let mut fewer = failed.clone();
    fewer.attempts.clear();
    fewer.record(answered(500), None);
    assert!(
        !store
            .replace_delivery(&reopened, &fewer, now)
            .await
            .unwrap(),
        "another attempt count was read"
    );
    assert_eq!(
        store
            .get_delivery("tn_a", "dl_l2")
            .await
            .unwrap()
            .unwrap()
            .status,
        DeliveryStatus::Failed
    );
    assert!(store
        .replace_delivery(&reopened, &failed, now)
        .await
        .unwrap());
    assert!(store
        .lease_delivery(&leased(&reopened, now + secs(60)), now)
        .await
        .unwrap());
    let mut held = reopened.clone();
    held.leased_until = Some(now + secs(60));
    assert!(
        !store.replace_delivery(&failed, &held, now).await.unwrap(),
        "never over a live lease"
    );
    let mut elsewhere = reopened.clone();
    elsewhere.id = "dl_none".into();
    assert!(
        !store
            .replace_delivery(&elsewhere, &elsewhere, now)
            .await
            .unwrap(),
        "nothing is created"
    );

    // Event claims: one winner, pending until its post is confirmed, expiry by value, release
    // and take-over; the envelope is kept for redelivery.
    // Claim times are kept to the millisecond, windows to the second.
    let now = now.replace_nanosecond(0).unwrap();
    let until = now + time::Duration::hours(24);
    assert_eq!(
        store
            .claim_event("tn_a", "e1", "first", "p1", until, now)
            .await
            .unwrap(),
        Claim::Won
    );
    let pending = |envelope: &str, claimed_at| Claim::Pending {
        envelope: envelope.into(),
        claimed_at,
        until,
    };
    assert_eq!(
        store
            .claim_event("tn_a", "e1", "again", "p2", until, now + secs(1))
            .await
            .unwrap(),
        pending("first", now),
        "a second post finds the first one's claim pending, with its envelope"
    );
    assert_eq!(
        store.get_event("tn_a", "e1").await.unwrap().as_deref(),
        Some("first"),
        "a duplicate does not overwrite"
    );
    assert!(
        !store
            .take_over_event("tn_a", "e1", "p2", now - secs(5), now + secs(40))
            .await
            .unwrap(),
        "a take-over names the claim time it saw"
    );
    assert!(store
        .take_over_event("tn_a", "e1", "p2", now, now + secs(40))
        .await
        .unwrap());
    assert!(
        !store
            .take_over_event("tn_a", "e1", "p3", now, now + secs(41))
            .await
            .unwrap(),
        "one take-over wins"
    );
    store.confirm_post("tn_a", "p1", until).await.unwrap();
    assert_eq!(
        store
            .claim_event("tn_a", "e1", "again", "p4", until, now + secs(45))
            .await
            .unwrap(),
        pending("first", now + secs(40)),
        "the confirmation of the post that lost the claim does not confirm it"
    );
    store.confirm_post("tn_a", "p2", until).await.unwrap();
    assert_eq!(
        store
            .claim_event("tn_a", "e1", "again", "p4", until, now + secs(50))
            .await
            .unwrap(),
        Claim::Confirmed,
        "the post that took it over confirms it"
    );
    for id in ["e1", "e2"] {
        assert_eq!(
            store
                .claim_event("tn_b", id, "b", "p5", until, now)
                .await
                .unwrap(),
            Claim::Won,
            "claims are per tenant"
        );
    }
    store.release_event_id("tn_b", "e1").await.unwrap();
    store.confirm_post("tn_b", "p5", until).await.unwrap();
    assert_eq!(
        store
            .claim_event("tn_b", "e1", "b again", "p6", until, now)
            .await
            .unwrap(),
        pending("b", OffsetDateTime::UNIX_EPOCH),
        "a released claim is pending since the epoch, whatever its post's confirmation says: \
         the next post takes it over at once"
    );
    assert_eq!(
        store
            .claim_event("tn_b", "e2", "b again", "p6", until, now)
            .await
            .unwrap(),
        Claim::Confirmed,
        "one confirmation confirms every claim of its post"
    );
    assert_eq!(store.get_event("tn_c", "e1").await.unwrap(), None);
    let later = until + time::Duration::seconds(1);
    assert_eq!(
        store
            .claim_event(
                "tn_a",
                "e1",
                "later",
                "p7",
                later + time::Duration::hours(24),
                later
            )
            .await
            .unwrap(),
        Claim::Won,
        "an expired claim is free"
    );
    assert_eq!(
        store.get_event("tn_a", "e1").await.unwrap().as_deref(),
        Some("later")
    );
    assert!(
        matches!(
            store
                .claim_event(
                    "tn_a",
                    "e1",
                    "x",
                    "p8",
                    later + secs(86_400),
                    later + secs(1)
                )
                .await
                .unwrap(),
            Claim::Pending { .. }
        ),
        "the earlier window's confirmation does not confirm the new claim"
    );

    // An event whose id Herald made is kept confirmed in one write: readable for redelivery, a
    // post naming its id within the window is a duplicate, and after it the id is free.
    store
        .keep_event("tn_a", "e-made", "made", until, now)
        .await
        .unwrap();
    assert_eq!(
        store.get_event("tn_a", "e-made").await.unwrap().as_deref(),
        Some("made")
    );
    assert_eq!(
        store
            .claim_event("tn_a", "e-made", "named", "p9", until, now + secs(1))
            .await
            .unwrap(),
        Claim::Confirmed,
        "kept is confirmed: no pending state to take over"
    );
    assert_eq!(
        store
            .claim_event("tn_a", "e-made", "named", "p9", later + secs(86_400), later)
            .await
            .unwrap(),
        Claim::Won,
        "free once its window is over"
    );

    // Updates replace existing webhooks only; counts are per tenant.
    let mut changed = store.get_webhook("tn_a", "wh_01").await.unwrap().unwrap();
    changed.spec.enabled = false;
    changed.spec.name = "renamed".into();
    assert!(store.update_webhook(&changed).await.unwrap());
    let read = store.get_webhook("tn_a", "wh_01").await.unwrap().unwrap();
    assert_eq!(
        (read.spec.name.as_str(), read.spec.enabled),
        ("renamed", false)
    );
    assert_eq!(read.revision, changed.revision + 1, "each update counts");
    // A writer holding the copy from before that update is refused, and changes nothing.
    let mut stale = changed.clone();
    stale.spec.name = "stale".into();
    assert!(!store.update_webhook(&stale).await.unwrap());
    assert_eq!(
        store
            .get_webhook("tn_a", "wh_01")
            .await
            .unwrap()
            .unwrap()
            .spec
            .name,
        "renamed"
    );
    assert!(store
        .subscribed_webhooks("tn_a")
        .await
        .unwrap()
        .iter()
        .any(|w| w.id == "wh_01" && !w.spec.enabled));
    assert!(
        !store
            .update_webhook(&webhook("tn_a", "wh_77", true))
            .await
            .unwrap(),
        "update does not create"
    );
    assert!(store.get_webhook("tn_a", "wh_77").await.unwrap().is_none());
    assert!(
        !store
            .update_webhook(&webhook("tn_b", "wh_01", true))
            .await
            .unwrap(),
        "nor cross tenants"
    );
    assert_eq!(store.count_webhooks("tn_a").await.unwrap(), 4);
    assert_eq!(store.count_webhooks("tn_b").await.unwrap(), 1);
    assert_eq!(store.count_webhooks("tn_z").await.unwrap(), 0);

    // Keys are revoked by id, by their own tenant only.
    assert!(!store.delete_api_key("tn_b", "key_1").await.unwrap());
    assert_eq!(tenant_of(store, "h1").await.as_deref(), Some("tn_a"));
    assert!(store.delete_api_key("tn_a", "key_1").await.unwrap());
    assert_eq!(tenant_of(store, "h1").await, None);
    assert!(!store.delete_api_key("tn_a", "key_1").await.unwrap());
}

pub fn api_key(tenant: &str, id: &str, hash: &str, scopes: Scopes) -> ApiKey {
    ApiKey {
        id: id.into(),
        tenant_id: tenant.into(),
        hash: hash.into(),
        name: format!("name of {id}"),
        scopes,
        // Whole seconds: what every store keeps.
        created_at: OffsetDateTime::from_unix_timestamp(1_764_600_000).unwrap(),
        last_used: None,
    }
}

async fn tenant_of(store: &dyn Store, hash: &str) -> Option<String> {
    store.api_key(hash).await.unwrap().map(|k| k.tenant_id)
}

/// Keys: every field read back as written, lookup by hash and by (tenant, id), listing in id
/// order page by page and per tenant, the day of last use moving only forward, revocation.
pub async fn key_contract(store: &dyn Store) {
    let ingest: Scopes = [Scope::Ingest].into_iter().collect();
    let read_admin: Scopes = [Scope::Read, Scope::Admin].into_iter().collect();
    let day = |d: u8| time::Date::from_calendar_date(2026, time::Month::December, d).unwrap();
    let mut used = api_key("tn_k", "key_03", "hk3", read_admin);
    used.last_used = Some(day(1));
    let keys = [
        api_key("tn_k", "key_01", "hk1", Scopes::ALL),
        api_key("tn_k", "key_02", "hk2", ingest),
        used,
        api_key("tn_j", "key_00", "hj0", Scopes::ALL),
    ];
    for key in &keys {
        store.put_api_key(key).await.unwrap();
    }
    assert_eq!(store.api_key("hk2").await.unwrap().as_ref(), Some(&keys[1]));
    assert_eq!(store.api_key("hk3").await.unwrap().as_ref(), Some(&keys[2]));
    assert_eq!(
        store.get_api_key("tn_k", "key_03").await.unwrap().as_ref(),
        Some(&keys[2])
    );
    assert_eq!(store.get_api_key("tn_j", "key_03").await.unwrap(), None);
    assert_eq!(store.get_api_key("tn_k", "key_99").await.unwrap(), None);

    let ids = |page: &herald_shared::store::Page<ApiKey>| {
        page.items.iter().map(|k| k.id.clone()).collect::<Vec<_>>()
    };
    let first = store.list_api_keys("tn_k", 2, None).await.unwrap();
    assert_eq!(
        (ids(&first), first.more),
        (vec!["key_01".into(), "key_02".into()], true)
    );
    assert_eq!(first.items[1], keys[1], "listing reads every field");
    let rest = store
        .list_api_keys("tn_k", 2, Some("key_02"))
        .await
        .unwrap();
    assert_eq!((ids(&rest), rest.more), (vec!["key_03".to_string()], false));
    assert_eq!(rest.items[0], keys[2]);
    let whole = store.list_api_keys("tn_k", 3, None).await.unwrap();
    assert_eq!(
        (whole.items.len(), whole.more),
        (3, false),
        "a full last page has no more"
    );
    assert_eq!(
        ids(&store.list_api_keys("tn_j", 10, None).await.unwrap()),
        ["key_00"]
    );
    assert!(store
        .list_api_keys("tn_z", 10, None)
        .await
        .unwrap()
        .items
        .is_empty());

    // The day of last use: set, moved forward, never back; a revoked key is not recreated.
    store.touch_api_key("hk1", day(2)).await.unwrap();
    assert_eq!(
        store.api_key("hk1").await.unwrap().unwrap().last_used,
        Some(day(2))
    );
    store.touch_api_key("hk3", day(3)).await.unwrap();
    store.touch_api_key("hk3", day(2)).await.unwrap();
    let touched = store.get_api_key("tn_k", "key_03").await.unwrap().unwrap();
    assert_eq!(touched.last_used, Some(day(3)));
    assert_eq!(touched.scopes, read_admin, "touching changes nothing else");
    assert_eq!(
        store.list_api_keys("tn_k", 3, None).await.unwrap().items[2].last_used,
        Some(day(3)),
        "the listing shows the day"
    );
    store.touch_api_key("nope", day(3)).await.unwrap();
    assert_eq!(store.api_key("nope").await.unwrap(), None);

    assert!(!store.delete_api_key("tn_j", "key_02").await.unwrap());
    assert!(store.delete_api_key("tn_k", "key_02").await.unwrap());
    assert_eq!(store.api_key("hk2").await.unwrap(), None);
    store.touch_api_key("hk2", day(4)).await.unwrap();
    assert_eq!(store.api_key("hk2").await.unwrap(), None, "not recreated");
    assert_eq!(
        ids(&store.list_api_keys("tn_k", 10, None).await.unwrap()),
        ["key_01", "key_03"]
    );
}

trait WithTimes {
    fn with_times(self, created: OffsetDateTime, updated: OffsetDateTime) -> Self;
}

impl WithTimes for Webhook {
    fn with_times(mut self, created: OffsetDateTime, updated: OffsetDateTime) -> Self {
        self.created_at = created;
        self.updated_at = updated;
        self
    }
}

/// A fan-out of a `jobs.failed` event with this id.
pub fn fan_out(event_id: &str) -> Message {
    Message::fan_out(EventEnvelope {
        tenant_id: "tn_contract".into(),
        envelope_id: ulid::Ulid::new(),
        event: Event::parse(
            &serde_json::json!({"id": event_id, "type": "jobs.failed"}),
            OffsetDateTime::now_utc(),
        )
        .expect("a valid event"),
    })
}

/// `wait` is how long a receive may wait (SQS long polling vs. memory).
pub async fn queue_contract(queue: &dyn Queue, wait: Duration) {
    queue
        .send(fan_out("single").encode(), Duration::ZERO)
        .await
        .unwrap();
    let ids: Vec<String> = (0..23).map(|i| format!("e{i}")).collect();
    let batch = ids.iter().map(|id| fan_out(id).encode()).collect();
    let results = queue.send_batch(batch).await.unwrap();
    assert_eq!(results.len(), 23);
    assert!(results.iter().all(Result::is_ok));

    let mut received = Vec::new();
    for _ in 0..20 {
        let got = queue.receive(10, wait).await.unwrap();
        assert!(got.len() <= 10);
        for m in &got {
            assert_eq!(m.receive_count, 1);
            queue.delete(&m.receipt).await.unwrap();
        }
        received.extend(got.into_iter().map(|m| {
            let message = Message::decode(&m.body).expect("what was sent decodes");
            message.envelope().event.id.to_string()
        }));
        if received.len() == 24 {
            break;
        }
    }
    received.sort();
    let mut expected = ids;
    expected.push("single".into());
    expected.sort();
    assert_eq!(
        received, expected,
        "every message arrives exactly once when deleted"
    );
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
}
