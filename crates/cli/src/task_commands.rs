//! The receiving side of the command line (task-lifecycle.md §4): the
//! received tasks by state and owner, one task with its timeline, and the
//! changes a user of the receiving organisation makes. Exit codes: 0 done,
//! 1 bad input, 2 refused (wrong state, lost a race, no such task here).

use crate::DataArgs;
use crate::commands::time;
use gpc_domain::lifecycle::{
    Actor, Change, InboxView, Owner, Party, Refusal, StateFilter, TaskChange, TimelineEntry,
};
use gpc_domain::reference::Practitioner;
use gpc_domain::task::ReceivedTask;
use gpc_domain::{OdsCode, Region};
use gpc_store::{ChangeOutcome, Store};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::Arc;

/// The change was refused, or there is no such task for the organisation.
pub const EXIT_REFUSED: u8 = 2;

/// What `inbox` lists.
pub struct InboxArgs {
    pub org: String,
    pub state: String,
    pub owner: Option<String>,
    pub limit: usize,
    pub json: bool,
}

/// One change asked on the command line.
pub struct ChangeArgs {
    pub task: String,
    pub org: String,
    pub user: String,
    pub change: ChangeKind,
    pub text: Option<String>,
    pub version: Option<u32>,
    pub json: bool,
}

pub enum ChangeKind {
    Take,
    /// To the SDS user id given.
    Assign(String),
    Complete,
    Reject,
    Note,
}

/// The store and the reference data of an organisation that receives tasks.
async fn receiving(
    data: &DataArgs,
    org: &str,
) -> Result<(Arc<dyn Store>, Region, OdsCode), String> {
    let ods = OdsCode::parse(org).ok_or_else(|| format!("'{org}' is not an ODS code"))?;
    let store = data.existing_store().await?;
    let region = Region::new(store.reference_index().await.map_err(|e| e.to_string())?);
    if region.tenant(ods.as_str()).is_none() {
        return Err(format!("{ods} does not receive tasks on this system"));
    }
    Ok((store, region, ods))
}

/// A practitioner record of `sds_user_id` at `org`.
fn colleague<'r>(
    region: &'r Region,
    sds_user_id: &'r str,
    org: &OdsCode,
) -> Result<&'r Practitioner, String> {
    region
        .practitioners_by_sds(sds_user_id)
        .find(|p| &p.organisation == org)
        .ok_or_else(|| format!("{sds_user_id} is not a user of {org}"))
}

pub async fn inbox(data: &DataArgs, args: InboxArgs) -> Result<ExitCode, String> {
    let states = StateFilter::parse(&args.state).ok_or_else(|| {
        format!(
            "'{}' is not a state: use open, received, accepted, completed, rejected, \
             cancelled, done or all",
            args.state
        )
    })?;
    let (store, _, ods) = receiving(data, &args.org).await?;
    let view = InboxView {
        states,
        owner: args.owner,
        unowned: false,
    };
    // One more than shown tells whether there are more.
    let mut tasks = store
        .inbox_view(&ods, &view, args.limit.saturating_add(1), None)
        .await
        .map_err(|e| e.to_string())?;
    let more = tasks.len() > args.limit;
    tasks.truncate(args.limit);
    if !args.json && tasks.is_empty() && !more {
        println!("no {} tasks received by {ods}", args.state);
    }
    for t in &tasks {
        if args.json {
            println!("{}", task_json(t, None));
            continue;
        }
        let p = &t.provenance;
        println!(
            "{}  {:<9} v{}  {}  from {} ({}) — {} [{}], {}\n  patient {} {}\n  {}: {}\n",
            time(t.received_at),
            t.life.state.code(),
            t.life.version,
            t.id,
            p.organisation_name,
            p.organisation_ods,
            p.practitioner_name,
            p.role_display,
            p.practitioner_sds_id,
            t.nhs_number.formatted(),
            t.patient_name,
            t.task_type.display(),
            t.text
        );
        if let Some(owner) = &t.life.owner {
            println!("  owner {} ({})\n", owner.name, owner.sds_user_id);
        }
    }
    if more {
        crate::commands::more_than_shown(
            args.limit,
            &format!("{} tasks received by {ods}", args.state),
            args.json,
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(data: &DataArgs, id: &str, org: &str, as_json: bool) -> Result<ExitCode, String> {
    let (store, _, ods) = receiving(data, org).await?;
    let Some(task) = store.get_task(&ods, id).await.map_err(|e| e.to_string())? else {
        eprintln!("error: {ods} has no task {id}");
        return Ok(ExitCode::from(EXIT_REFUSED));
    };
    let timeline = store.timeline(&ods, id).await.map_err(|e| e.to_string())?;
    let updates = store
        .task_updates(&ods, id)
        .await
        .map_err(|e| e.to_string())?;
    if as_json {
        let mut v = task_json(&task, Some(&timeline));
        // Whether the sender heard of each change (§3).
        v["updates"] = updates
            .iter()
            .map(|u| {
                json!({
                    "version": u.entry.version,
                    "status": u.status.code(),
                    "attempts": u.attempts,
                    "next_attempt_at": u.next_attempt_at.map(|t| t.to_string()),
                    "http_status": u.http_status,
                    "detail": u.detail,
                })
            })
            .collect();
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let p = &task.provenance;
    println!("Task:      {}", task.id);
    println!(
        "State:     {} (version {})",
        task.life.state.display(),
        task.life.version
    );
    if let Some(owner) = &task.life.owner {
        println!("Owner:     {} ({})", owner.name, owner.sds_user_id);
    }
    println!(
        "Patient:   {} ({})",
        task.patient_name,
        task.nhs_number.formatted()
    );
    println!(
        "From:      {} ({}), {} ({})",
        p.practitioner_name, p.role_display, p.organisation_name, p.organisation_ods
    );
    println!("Type:      {}", task.task_type.display());
    println!("Details:   {}\n", task.text);
    println!("Timeline:");
    for e in full_timeline(&task, &timeline) {
        println!(
            "  v{} {}  {:<9} by {} ({}, {}){}",
            e.version,
            time(e.at),
            e.state.code(),
            e.by.name,
            e.by.role_display,
            e.by.organisation,
            e.note.map(|n| format!(": {n}")).unwrap_or_default()
        );
    }
    if !updates.is_empty() {
        println!("\nUpdates to {}:", p.organisation_name);
        for u in &updates {
            println!(
                "  v{} {}{}",
                u.entry.version,
                u.status.code(),
                u.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn change(data: &DataArgs, args: ChangeArgs) -> Result<ExitCode, String> {
    let (store, region, ods) = receiving(data, &args.org).await?;
    let by = Actor::of(colleague(&region, &args.user, &ods)?);
    let change = match &args.change {
        ChangeKind::Take => Change::Take,
        ChangeKind::Assign(to) => {
            let to = colleague(&region, to, &ods)?;
            Change::Assign {
                to: Owner {
                    sds_user_id: to.sds_user_id.clone(),
                    name: to.display_name(),
                },
            }
        }
        ChangeKind::Complete => Change::Complete,
        ChangeKind::Reject => Change::Reject,
        ChangeKind::Note => Change::Note,
    };
    let request = TaskChange {
        change,
        by,
        party: Party::Receiver,
        text: args.text,
        expected_version: args.version,
        at: jiff::Timestamp::now(),
        wire: gpc_domain::updates::Wire::outgoing(),
    };
    let outcome = store
        .change_task(&ods, &args.task, request)
        .await
        .map_err(|e| e.to_string())?;
    match outcome {
        None => {
            eprintln!("error: {ods} has no task {}", args.task);
            Ok(ExitCode::from(EXIT_REFUSED))
        }
        // A repeat comes only with an update that arrived, never from here.
        Some(
            ChangeOutcome::Changed { task, entry } | ChangeOutcome::Repeat { task, entry, .. },
        ) => {
            if args.json {
                let timeline = store
                    .timeline(&ods, &task.id)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", task_json(&task, Some(&timeline)));
            } else {
                println!(
                    "{}: task {} is {}, version {}{}",
                    entry.by.name,
                    task.id,
                    task.life.state.code(),
                    task.life.version,
                    task.life
                        .owner
                        .as_ref()
                        .map(|o| format!(", owned by {} ({})", o.name, o.sds_user_id))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(ChangeOutcome::Refused { refusal, task }) => {
            let last = store
                .timeline(&ods, &task.id)
                .await
                .map_err(|e| e.to_string())?
                .pop();
            if is_bad_input(&refusal) {
                return Err(refusal.to_string());
            }
            eprintln!("refused: {refusal}");
            eprintln!("{}", where_it_stands(&task, last.as_ref()));
            if args.json {
                let timeline = store
                    .timeline(&ods, &task.id)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", task_json(&task, Some(&timeline)));
            }
            Ok(ExitCode::from(EXIT_REFUSED))
        }
    }
}

/// A reason or note that is missing or unusable is the caller's input to
/// mend (exit 1); the rest are refusals of the task's state (exit 2).
fn is_bad_input(refusal: &Refusal) -> bool {
    matches!(
        refusal,
        Refusal::ReasonRequired | Refusal::NoteRequired | Refusal::BadText(_)
    )
}

/// "It is accepted (version 2): Dr Nichole GILBERT took it at ...": what
/// the loser of a race needs to know.
fn where_it_stands(task: &ReceivedTask, last: Option<&TimelineEntry>) -> String {
    let mut line = format!(
        "task {} is {} (version {})",
        task.id,
        task.life.state.code(),
        task.life.version
    );
    if let Some(owner) = &task.life.owner {
        line.push_str(&format!(
            ", owned by {} ({})",
            owner.name, owner.sds_user_id
        ));
    }
    if let Some(e) = last {
        line.push_str(&format!(
            "; last changed by {} ({}) at {}",
            e.by.name,
            e.by.sds_user_id,
            time(e.at)
        ));
    }
    line
}

/// The delivery as version 1, by the sender, then every change.
fn full_timeline(task: &ReceivedTask, changes: &[TimelineEntry]) -> Vec<TimelineEntry> {
    let mut all = Vec::with_capacity(changes.len() + 1);
    all.push(task.delivery_entry());
    all.extend(changes.iter().cloned());
    all
}

/// A received task as the scripts of §4 read it.
fn task_json(t: &ReceivedTask, timeline: Option<&[TimelineEntry]>) -> Value {
    let p = &t.provenance;
    let owner = t.life.owner.as_ref();
    let mut v = json!({
        "id": t.id,
        "state": t.life.state.code(),
        "version": t.life.version,
        "owner_sds_id": owner.map(|o| o.sds_user_id.as_str()),
        "owner_name": owner.map(|o| o.name.as_str()),
        "received_at": t.received_at.to_string(),
        "from_ods": p.organisation_ods.as_str(),
        "from_name": p.organisation_name,
        "practitioner_sds_id": p.practitioner_sds_id,
        "practitioner_name": p.practitioner_name,
        "role_code": p.role_code,
        "role": p.role_display,
        "nhs_number": t.nhs_number.as_digits(),
        "patient_name": t.patient_name,
        "type": t.task_type.display(),
        "type_code": t.task_type.code(),
        "text": t.text,
        "trace_id": p.trace_id,
    });
    if let Some(changes) = timeline {
        v["timeline"] = full_timeline(t, changes).iter().map(entry_json).collect();
    }
    v
}

pub(crate) fn entry_json(e: &TimelineEntry) -> Value {
    json!({
        "version": e.version,
        "state": e.state.code(),
        "at": e.at.to_string(),
        "party": e.party.code(),
        "by_sds_id": e.by.sds_user_id,
        "by_name": e.by.name,
        "by_role": e.by.role_display,
        "by_ods": e.by.organisation.as_str(),
        "owner_sds_id": e.owner.as_ref().map(|o| o.sds_user_id.as_str()),
        "note": e.note,
    })
}
