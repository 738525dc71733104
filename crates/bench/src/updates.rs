//! Set-up and timing for the task-update measurements of `bench/run`
//! (task-lifecycle.md §2, §3): received tasks that the hub may cancel, one
//! per `POST /OrderResponse`; and updates queued at a receiver for the
//! running server to deliver to the sender through the SSP.

use crate::{Population, Rng, ods, round};
use gpc_domain::lifecycle::{Actor, Change, Party, TaskChange};
use gpc_domain::reference::ReferenceData;
use gpc_domain::sent::{SendStatus, SentTask};
use gpc_domain::task::NewTask;
use gpc_domain::updates::{RemoteState, Wire};
use gpc_domain::{Asid, Region};
use gpc_store::outbox::{Outbox, SqliteOutbox};
use gpc_store::{SqliteStore, Store};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The hub that sends, and the practice that receives.
const HUB: &str = "Y00001";
const PRACTICE: &str = "GPC001";
/// Mrs Melissa PARSONS at the hub, and Dr Nichole GILBERT at the practice.
const HUB_USER: &str = "G11111116";
const PRACTICE_USER: &str = "G13579135";

/// The id wrk's sequential mode gives request `counter` of thread `thread`
/// in a run with id 00000000 (`bench/wrk/gpc.lua`).
pub fn sequential_id(thread: usize, counter: usize) -> String {
    format!("00000000-{thread:04x}-4000-8000-{counter:012x}")
}

/// The store of `data_dir` with the demo region, as `serve` makes it.
async fn open_store(data_dir: &Path) -> Result<(SqliteStore, Arc<Region>, ReferenceData), String> {
    let store = SqliteStore::open(data_dir).map_err(|e| e.to_string())?;
    let mut reference = store.reference_data().await.map_err(|e| e.to_string())?;
    if reference.is_empty() {
        reference = gpc_directory::demo_region();
        store
            .upsert_reference(&reference)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok((store, Arc::new(Region::new(reference.clone())), reference))
}

/// `count` tasks the hub sent to the practice, with the ids `ids` gives.
fn hub_tasks(
    region: &Region,
    data: &ReferenceData,
    ids: impl Iterator<Item = String>,
) -> Result<Vec<NewTask>, String> {
    let practice = region
        .tenant(PRACTICE)
        .ok_or_else(|| format!("{PRACTICE} does not receive tasks"))?;
    let hub = region
        .organisation_by_ods(HUB)
        .ok_or_else(|| format!("no organisation {HUB}"))?;
    let hub_asid = hub.asid.clone().ok_or("the hub has no ASID")?;
    let user = region
        .practitioners_by_sds(HUB_USER)
        .next()
        .ok_or("the hub's user is missing")?;
    let population = Population::new(region, data, practice)?;
    let newest = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    let ids: Vec<String> = ids.collect();
    let total = ids.len();
    Ok(ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let mut task = population.task(i, total, newest, &mut rng);
            task.resource["id"] = json!(id);
            task.resource["source"] =
                json!({"reference": format!("Organization/{}", hub.id), "display": hub.name});
            task.id = id;
            task.source_org_id = hub.id.clone();
            let p = &mut task.provenance;
            p.sender_asid = hub_asid.clone();
            p.organisation_ods = hub.ods.clone();
            p.organisation_name = hub.name.clone();
            p.practitioner_sds_id = user.sds_user_id.clone();
            p.practitioner_name = user.display_name();
            p.role_code = user.role_code.clone();
            p.role_display = user.role_display.clone();
            task
        })
        .collect())
}

/// Stores `count` open tasks from the hub at the practice, under the ids
/// wrk's sequential mode sends with its two threads: each `POST
/// /OrderResponse` of the run cancels a task of its own.
pub async fn preload_cancellable(data_dir: &Path, count: usize) -> Result<(), String> {
    let started = Instant::now();
    let (store, region, data) = open_store(data_dir).await?;
    let per_thread = count.div_ceil(2);
    let ids = (1..=2).flat_map(|t| (1..=per_thread).map(move |c| sequential_id(t, c)));
    let tasks = hub_tasks(&region, &data, ids)?;
    store.bulk_insert(tasks).await.map_err(|e| e.to_string())?;
    store.flush().await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({"tasks": per_thread * 2, "seconds": round(started.elapsed().as_secs_f64(), 1)})
    );
    Ok(())
}

/// Stores `count` tasks the hub sent and the practice received (both sides
/// of one `serve` at `base`), and has Dr GILBERT take each: `count` updates
/// queued at the practice for the hub, which the next `serve` delivers.
pub async fn preload_updates(data_dir: &Path, count: usize, base: &str) -> Result<(), String> {
    let started = Instant::now();
    let (store, region, data) = open_store(data_dir).await?;
    let ids: Vec<String> = (0..count)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let tasks = hub_tasks(&region, &data, ids.iter().cloned())?;
    let outbox = SqliteOutbox::open(data_dir).map_err(|e| e.to_string())?;
    let endpoint = format!("{}/{PRACTICE}/DSTU2/1", base.trim_end_matches('/'));
    let practice = region.tenant(PRACTICE).ok_or("no practice")?;
    let to_asid: Asid = practice.asid.clone().ok_or("the practice has no ASID")?;
    for task in &tasks {
        outbox
            .enqueue(&sent_task(task, &endpoint, &to_asid, &practice.name))
            .await
            .map_err(|e| e.to_string())?;
    }
    store.bulk_insert(tasks).await.map_err(|e| e.to_string())?;
    let gilbert = region
        .practitioners_by_sds(PRACTICE_USER)
        .find(|p| p.organisation.as_str() == PRACTICE)
        .ok_or("Dr GILBERT is missing")?;
    let by = Actor::of(gilbert);
    let tenant = ods(PRACTICE)?;
    let store: Arc<dyn Store> = Arc::new(store);
    // Many at once, as many users would: the writer commits them in groups.
    let mut running = tokio::task::JoinSet::new();
    for id in ids {
        let (store, by, tenant) = (store.clone(), by.clone(), tenant.clone());
        running.spawn(async move {
            let take = TaskChange {
                change: Change::Take,
                by,
                party: Party::Receiver,
                text: None,
                expected_version: Some(1),
                at: jiff::Timestamp::now(),
                wire: Wire::outgoing(),
            };
            store.change_task(&tenant, &id, take).await
        });
        if running.len() >= 256
            && let Some(done) = running.join_next().await
        {
            taken(done)?;
        }
    }
    while let Some(done) = running.join_next().await {
        taken(done)?;
    }
    store.flush().await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({"updates": count, "seconds": round(started.elapsed().as_secs_f64(), 1)})
    );
    Ok(())
}

fn taken(
    done: Result<
        Result<Option<gpc_store::ChangeOutcome>, gpc_store::StoreError>,
        tokio::task::JoinError,
    >,
) -> Result<(), String> {
    match done
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
    {
        Some(gpc_store::ChangeOutcome::Changed { .. }) => Ok(()),
        other => Err(format!("a take was not made: {other:?}")),
    }
}

/// The hub's outbox row of a task the practice holds as `task.id`.
fn sent_task(task: &NewTask, endpoint: &str, to_asid: &Asid, to_name: &str) -> SentTask {
    let p = &task.provenance;
    let at = task.received_at;
    SentTask {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: at,
        updated_at: at,
        from_ods: p.organisation_ods.clone(),
        from_name: p.organisation_name.clone(),
        from_asid: Some(p.sender_asid.clone()),
        user_sds_id: p.practitioner_sds_id.clone(),
        user_id: p.practitioner_sds_id.clone(),
        user_name: p.practitioner_name.clone(),
        user_role_code: p.role_code.clone(),
        user_role_display: p.role_display.clone(),
        nhs_number: task.nhs_number,
        patient_name: task.patient_name.clone(),
        to_ods: task.tenant.clone(),
        to_name: to_name.to_owned(),
        to_telephone: String::new(),
        to_address: String::new(),
        endpoint: endpoint.to_owned(),
        to_asid: Some(to_asid.clone()),
        task_type: task.task_type,
        text: task.text.clone(),
        identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        status: SendStatus::Delivered,
        attempts: 1,
        cycle_attempts: 1,
        next_attempt_at: None,
        provider_task_id: Some(task.id.clone()),
        delivered_at: Some(at),
        reason: None,
        remote: Some(RemoteState {
            state: gpc_domain::lifecycle::TaskState::Received,
            version: 1,
            owner: None,
            at,
        }),
        cancellation: None,
    }
}

/// Waits until `count` updates in `data_dir` are delivered; prints how long
/// that took from `since_ns` (the server's launch, Unix nanoseconds) to the
/// last delivery, and the rate.
pub fn updates_wait(data_dir: &Path, count: usize, since_ns: i64) -> Result<(), String> {
    let conn = rusqlite::Connection::open(data_dir.join(gpc_store::DATABASE_FILE))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (delivered, last): (i64, Option<i64>) = conn
            .query_row(
                "SELECT count(*), max(finished_at) FROM task_updates WHERE status = 'delivered'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| e.to_string())?;
        if delivered as usize >= count {
            let seconds = (last.unwrap_or(since_ns) - since_ns) as f64 / 1e9;
            println!(
                "{}",
                json!({
                    "updates": delivered,
                    "seconds": round(seconds, 3),
                    "per_second": round(delivered as f64 / seconds.max(1e-9), 0),
                })
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {delivered} of {count} updates were delivered in 10 minutes"
            ));
        }
        // The time comes from the rows, not from this loop: polling more
        // often only takes the server's CPU.
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A cancellation from the hub's Mrs PARSONS of the practice's task
/// `__ID__` at `root` (the practice's provider root), on one line.
pub fn cancellation_template(root: &str) -> String {
    let update = gpc_domain::order_response::TaskUpdate {
        identifier: "urn:uuid:__ID__".into(),
        version: 1,
        request: format!("{}/Order/__ID__", root.trim_end_matches('/')),
        date: jiff::Timestamp::now(),
        who: gpc_domain::order_response::Person {
            sds_user_id: HUB_USER.into(),
            prefix: "Mrs".into(),
            given: "Melissa".into(),
            family: "PARSONS".into(),
            role_code: "R0260".into(),
            role_display: "General Medical Practitioner".into(),
        },
        owner: None,
        state: gpc_domain::lifecycle::TaskState::Cancelled,
        description: Some("Sent in error.".into()),
    };
    gpc_domain::order_response::order_response(&update).to_string()
}
