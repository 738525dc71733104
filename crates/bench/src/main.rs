//! `gpc-bench`: support for `bench/run`, and nothing else — not part of the
//! product. It builds the requests the load generator sends (the same way
//! the tests do, through `gpc-testkit`), preloads a data directory with many
//! tasks through the store's fast bulk path, times the inbox listing through
//! the `Store` API, and measures the disk's fsync rate.
//!
//! Every sub-command prints its result as one JSON object on stdout.

// Benchmark support panics on purpose: a helper failing fails the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod region_files;
mod updates;

use clap::{Parser, Subcommand};
use gpc_domain::lifecycle::{InboxView, StateFilter};
use gpc_domain::reference::{Organisation, Patient, Practitioner, ReferenceData};
use gpc_domain::task::{BusinessIdentifier, NewTask, Provenance, TaskType};
use gpc_domain::{Asid, OdsCode, Region};
use gpc_store::{SqliteStore, Store};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "gpc-bench", about = "Benchmark support for bench/run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prints the headers of a valid request (`Name: value` lines) with a JWT
    /// fresh for five minutes, from Y00001 (Mrs PARSONS).
    Headers {
        /// metadata, create, orderresponse, search-organization or search-patient.
        #[arg(long)]
        interaction: String,
        /// Receiving organisation (its ASID goes into Ssp-To).
        #[arg(long, default_value = "GPC001")]
        ods: String,
        #[arg(long, default_value = gpc_testkit::GPC001_ASID)]
        to_asid: String,
    },
    /// Writes a fictional region at national scale in the import formats
    /// (epraccur.csv, spine.toml, practitioners.csv, patients.ndjson,
    /// records.csv) into `out`, for bench/region.
    RegionFiles {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 12_000)]
        practices: usize,
        #[arg(long, default_value_t = 1_000_000)]
        patients: usize,
    },
    /// Prints a spec §4.1 Order for GPC001 (DAWES, from Y00001) on one line,
    /// with `__ID__` where a unique identifier goes.
    OrderTemplate,
    /// Writes `count` Orders, one per line, each with its own identifier.
    OrderLines {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Stores `tasks` realistic tasks for `org` through `SqliteStore::bulk_insert`.
    Preload {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value = "GPC001")]
        org: String,
        #[arg(long, default_value_t = 1_000_000)]
        tasks: usize,
        /// Leave this many tasks open (received), spread evenly; the rest
        /// are completed. All stay open when not given.
        #[arg(long)]
        open: Option<usize>,
    },
    /// Times `Store::inbox_view(org, view, limit, None)` and keyset paging from it.
    Inbox {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value = "GPC001")]
        org: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
        /// all, open (the To-do list), done, or one state.
        #[arg(long, default_value = "all")]
        view: String,
    },
    /// Stores `count` open tasks from Y00001 at GPC001 under the ids of
    /// wrk's sequential mode, for the `POST /OrderResponse` run.
    PreloadCancellable {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 200_000)]
        count: usize,
    },
    /// Prints a cancellation (OrderResponse) of GPC001's task `__ID__` at
    /// `root`, on one line.
    CancellationTemplate {
        #[arg(long)]
        root: String,
    },
    /// Stores `count` tasks sent by Y00001 and received by GPC001 on a
    /// server at `base`, each taken at GPC001: updates queued for Y00001.
    PreloadUpdates {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long)]
        base: String,
    },
    /// Waits until `count` queued updates are delivered; times them from
    /// `since_ns` (Unix nanoseconds).
    UpdatesWait {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long)]
        since_ns: i64,
    },
    /// Prints a free loopback port.
    FreePort,
    /// Writes 4 KiB and calls fdatasync in a loop, in `dir`, for `seconds`.
    Fsync {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Headers {
                interaction,
                ods,
                to_asid,
            } => headers(&interaction, &ods, &to_asid),
            Command::OrderTemplate => {
                println!("{}", order_template());
                Ok(())
            }
            Command::OrderLines { count, out } => order_lines(count, &out),
            Command::Preload {
                data_dir,
                org,
                tasks,
                open,
            } => preload(&data_dir, &org, tasks, open).await,
            Command::Inbox {
                data_dir,
                org,
                limit,
                iterations,
                view,
            } => inbox(&data_dir, &org, limit, iterations, &view).await,
            Command::Fsync { dir, seconds } => fsync(&dir, seconds),
            Command::PreloadCancellable { data_dir, count } => {
                updates::preload_cancellable(&data_dir, count).await
            }
            Command::CancellationTemplate { root } => {
                println!("{}", updates::cancellation_template(&root));
                Ok(())
            }
            Command::PreloadUpdates {
                data_dir,
                count,
                base,
            } => updates::preload_updates(&data_dir, count, &base).await,
            Command::UpdatesWait {
                data_dir,
                count,
                since_ns,
            } => updates::updates_wait(&data_dir, count, since_ns),
            Command::RegionFiles {
                out,
                practices,
                patients,
            } => region_files::write(&out, practices, patients),
            Command::FreePort => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| println!("{}", a.port()))
                .map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn headers(interaction: &str, ods: &str, to_asid: &str) -> Result<(), String> {
    let (id, scope, record) = match interaction {
        "metadata" => (
            gpc_testkit::METADATA,
            "organization/*.read",
            gpc_testkit::org_record(ods),
        ),
        "create" => (
            gpc_testkit::CREATE,
            "organization/*.write",
            gpc_testkit::org_record(ods),
        ),
        "orderresponse" => (
            "urn:nhs:names:services:gpconnect:fhir:rest:create:orderresponse",
            "organization/*.write",
            gpc_testkit::org_record(ods),
        ),
        "search-organization" => (
            gpc_testkit::SEARCH_ORG,
            "organization/*.read",
            gpc_testkit::org_record(ods),
        ),
        "search-patient" => (
            gpc_testkit::SEARCH_PATIENT,
            "patient/*.read",
            gpc_testkit::patient_record("9476719931"),
        ),
        other => return Err(format!("unknown interaction '{other}'")),
    };
    let jwt = gpc_testkit::Jwt::new(scope, record).encode();
    for (name, value) in &gpc_testkit::headers(id, to_asid, &jwt) {
        let value = value.to_str().map_err(|e| e.to_string())?;
        println!("{}: {value}", name.as_str());
    }
    if interaction == "create" || interaction == "orderresponse" {
        println!("content-type: {}", gpc_testkit::JSON);
    }
    Ok(())
}

/// The Order with its identifier value replaced by a placeholder.
fn order_template() -> String {
    let mut order = gpc_testkit::dawes_order();
    order["identifier"][0]["value"] = json!("urn:uuid:__ID__");
    order.to_string()
}

fn order_lines(count: usize, out: &Path) -> Result<(), String> {
    let template = order_template();
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for _ in 0..count {
        let line = template.replace("__ID__", &uuid::Uuid::new_v4().to_string());
        writeln!(w, "{line}").map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({"orders": count, "file": out.display().to_string()})
    );
    Ok(())
}

/// Tasks built per bulk call: small enough to keep the preloader's memory
/// low, large enough to keep the writer busy while the next chunk is built.
const PRELOAD_CHUNK: usize = 20_000;

const TEXTS: &[&str] = &[
    "Please review the patient's medications at the next available opportunity.",
    "Patient seen at the extended access hub today with a chest infection; amoxicillin 500 mg three times a day for five days prescribed. No follow-up needed unless symptoms persist.",
    "Blood pressure 168/102 on two readings today. Please arrange a review of antihypertensive treatment within two weeks and repeat U&Es.",
    "For information: the patient attended A&E after a fall at home. X-ray showed no fracture. Discharged with analgesia. Community falls team referral made.",
    "Please book a medication review: the patient reports dizziness since the dose of amlodipine was increased last month, and would like to discuss alternatives with their usual GP. They are available on weekday mornings and prefer a telephone appointment.",
];

/// Where the preloaded tasks come from: every sender organisation with its
/// practitioners, and the patients the tenant holds a current record of.
struct Population<'r> {
    tenant: &'r Organisation,
    senders: Vec<(&'r Organisation, Asid, Vec<&'r Practitioner>)>,
    patients: Vec<Patient>,
}

impl<'r> Population<'r> {
    /// `data` holds the patients and records (the region holds none).
    fn new(
        region: &'r Region,
        data: &ReferenceData,
        tenant: &'r Organisation,
    ) -> Result<Self, String> {
        let all: Vec<&Practitioner> = region.data().practitioners.iter().collect();
        let senders: Vec<_> = region
            .organisations()
            .iter()
            .filter(|o| o.id != tenant.id)
            .filter_map(|o| {
                let asid = o.asid.clone()?;
                let own: Vec<&Practitioner> = all
                    .iter()
                    .copied()
                    .filter(|p| p.organisation == o.ods)
                    .collect();
                Some((o, asid, if own.is_empty() { all.clone() } else { own }))
            })
            .collect();
        let by_id: std::collections::HashMap<&str, &Patient> =
            data.patients.iter().map(|p| (p.id.as_str(), p)).collect();
        let patients: Vec<Patient> = data
            .records
            .iter()
            .filter(|r| r.holder == tenant.ods && r.ended.is_none())
            .filter_map(|r| by_id.get(r.patient_id.as_str()).map(|&p| p.clone()))
            .collect();
        if senders.is_empty() || patients.is_empty() || all.is_empty() {
            return Err(format!(
                "{} has no senders, patients or practitioners to build tasks from",
                tenant.ods
            ));
        }
        Ok(Self {
            tenant,
            senders,
            patients,
        })
    }

    /// Task `i` of `total`, received `total - i` steps before `newest`.
    fn task(&self, i: usize, total: usize, newest: jiff::Timestamp, rng: &mut Rng) -> NewTask {
        let (sender, sender_asid, practitioners) = &self.senders[rng.below(self.senders.len())];
        let practitioner = practitioners[rng.below(practitioners.len())];
        let patient = &self.patients[rng.below(self.patients.len())];
        let text = TEXTS[rng.below(TEXTS.len())];
        let task_type = if rng.below(3) == 0 {
            TaskType::InformationOnly
        } else {
            TaskType::ActionNeeded
        };
        // A year of tasks, oldest first, 0 to 999 ms apart from an even spread.
        let step_ms = (365 * 24 * 3600 * 1000 / total.max(1)) as i64;
        let back_ms = (total - i) as i64 * step_ms + rng.below(1000) as i64;
        let received_at = newest - jiff::SignedDuration::from_millis(back_ms);
        let id = uuid::Uuid::new_v4().to_string();
        let consumer_identifier = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let provider_identifier = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let basic_id = uuid::Uuid::new_v4().to_string();
        let date = received_at
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string();
        let resource = json!({
            "resourceType": "Order",
            "id": id,
            "meta": {
                "profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"],
                "versionId": "1",
                "lastUpdated": received_at.to_string(),
            },
            "identifier": [
                {"system": "urn:ietf:rfc:3986", "value": consumer_identifier},
                {"system": "urn:ietf:rfc:3986", "value": provider_identifier},
            ],
            "contained": [{
                "resourceType": "Basic",
                "id": basic_id,
                "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-description-basic-1"]},
                "text": {"status": "generated",
                         "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{text}</div>")},
                "code": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-narrative-1", "code": "Task Narrative"}]}
            }],
            "date": date,
            "subject": {"reference": format!("Patient/{}", patient.id), "display": patient.display_name()},
            "source": {"reference": format!("Organization/{}", sender.id), "display": sender.name},
            "target": {"reference": format!("Organization/{}", self.tenant.id), "display": self.tenant.name},
            "reasonCodeableConcept": {
                "coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-type-1",
                            "code": task_type.code(), "display": task_type.display()}],
                "text": task_type.display()
            },
            "detail": [{"reference": format!("#{basic_id}")}]
        });
        NewTask {
            id,
            version_id: "1".into(),
            tenant: self.tenant.ods.clone(),
            idempotency_keys: vec![BusinessIdentifier {
                system: "urn:ietf:rfc:3986".into(),
                value: consumer_identifier,
            }],
            provider_identifier,
            patient_id: patient.id.clone(),
            nhs_number: patient.nhs_number,
            patient_name: patient.display_name(),
            source_org_id: sender.id.clone(),
            task_type,
            text: text.to_owned(),
            received_at,
            provenance: Provenance {
                sender_asid: sender_asid.clone(),
                organisation_ods: sender.ods.clone(),
                organisation_name: sender.name.clone(),
                practitioner_sds_id: practitioner.sds_user_id.clone(),
                practitioner_name: practitioner.display_name(),
                role_code: practitioner.role_code.clone(),
                role_display: practitioner.role_display.clone(),
                trace_id: uuid::Uuid::new_v4().to_string(),
            },
            resource,
        }
    }
}

/// xorshift64*: enough to spread picks; no need for a crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

async fn preload(
    data_dir: &Path,
    org: &str,
    total: usize,
    open: Option<usize>,
) -> Result<(), String> {
    let started = Instant::now();
    let store = SqliteStore::open(data_dir).map_err(|e| e.to_string())?;
    // As `serve` would on a new data directory.
    let mut reference = store.reference_data().await.map_err(|e| e.to_string())?;
    if reference.is_empty() {
        reference = gpc_directory::demo_region();
        store
            .upsert_reference(&reference)
            .await
            .map_err(|e| e.to_string())?;
    }
    let reference = std::sync::Arc::new(reference);
    let region = std::sync::Arc::new(Region::new((*reference).clone()));
    region
        .tenant(org)
        .ok_or_else(|| format!("{org} does not receive tasks on this system"))?;
    Population::new(&region, &reference, region.tenant(org).expect("checked"))?;
    let newest = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let build = |from: usize| {
        let region = region.clone();
        let reference = reference.clone();
        let org = org.to_owned();
        tokio::task::spawn_blocking(move || {
            let tenant = region.tenant(&org).expect("checked");
            let population = Population::new(&region, &reference, tenant).expect("checked");
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (from as u64 + 1));
            (from..(from + PRELOAD_CHUNK).min(total))
                .map(|i| population.task(i, total, newest, &mut rng))
                .collect::<Vec<_>>()
        })
    };
    // The next chunk is built while the writer stores the current one.
    let mut next = (total > 0).then(|| build(0));
    let mut from = 0;
    while let Some(pending) = next.take() {
        let chunk = pending.await.map_err(|e| e.to_string())?;
        from += chunk.len();
        if from < total {
            next = Some(build(from));
        }
        store.bulk_insert(chunk).await.map_err(|e| e.to_string())?;
    }
    store.flush().await.map_err(|e| e.to_string())?;
    let stored = store
        .count_tasks(&ods(org)?)
        .await
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    drop(store);
    if let Some(open) = open.filter(|&open| open < total) {
        close_all_but(data_dir, org, total / open.max(1))?;
    }
    let bytes = data_size(data_dir);
    println!(
        "{}",
        json!({
            "tasks": total,
            "stored_for_org": stored,
            "seconds": round(seconds, 1),
            "tasks_per_second": round(total as f64 / seconds, 0),
            "data_bytes": bytes,
        })
    );
    Ok(())
}

/// The database with its WAL and shared-memory files.
fn data_size(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn ods(org: &str) -> Result<OdsCode, String> {
    OdsCode::parse(org).ok_or_else(|| format!("'{org}' is not an ODS code"))
}

/// Completes every task but each `step`-th, in one statement on the file:
/// the benchmark times reading the lists, and a million changes one by one
/// through the store would take minutes to set that up.
fn close_all_but(data_dir: &Path, org: &str, step: usize) -> Result<(), String> {
    let conn = rusqlite::Connection::open(data_dir.join(gpc_store::DATABASE_FILE))
        .map_err(|e| e.to_string())?;
    conn.execute(
        "UPDATE tasks SET state = 'completed', version = 2 WHERE tenant = ?1 AND rowid % ?2 != 0",
        rusqlite::params![org, i64::try_from(step).unwrap_or(i64::MAX)],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

async fn inbox(
    data_dir: &Path,
    org: &str,
    limit: usize,
    iterations: usize,
    view: &str,
) -> Result<(), String> {
    let states = StateFilter::parse(view).ok_or_else(|| format!("'{view}' is not a view"))?;
    let view = InboxView::of(states);
    let store = SqliteStore::open(data_dir).map_err(|e| e.to_string())?;
    let org = &ods(org)?;
    let count = store.count_tasks(org).await.map_err(|e| e.to_string())?;
    // Warm-up: the first reads open connections and fill the page cache.
    for _ in 0..20 {
        store
            .inbox_view(org, &view, limit, None)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut first = Vec::with_capacity(iterations);
    let mut rows = 0;
    for _ in 0..iterations {
        let t = Instant::now();
        let page = store
            .inbox_view(org, &view, limit, None)
            .await
            .map_err(|e| e.to_string())?;
        first.push(t.elapsed());
        rows = page.len();
    }
    // Keyset paging: each page starts after the last task of the one before.
    let mut paging = Vec::with_capacity(iterations);
    let mut before = None;
    for _ in 0..iterations {
        let t = Instant::now();
        let page = store
            .inbox_view(org, &view, limit, before.clone())
            .await
            .map_err(|e| e.to_string())?;
        paging.push(t.elapsed());
        before = page.last().map(|task| (task.received_at, task.id.clone()));
        if before.is_none() {
            break;
        }
    }
    println!(
        "{}",
        json!({
            "tasks_for_org": count,
            "view": states.states().iter().map(|s| s.code()).collect::<Vec<_>>(),
            "limit": limit,
            "rows_per_page": rows,
            "first_page": summary(&mut first),
            "next_pages": summary(&mut paging),
        })
    );
    Ok(())
}

fn summary(samples: &mut [Duration]) -> Value {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        round(samples[i].as_secs_f64() * 1000.0, 3)
    };
    if samples.is_empty() {
        return Value::Null;
    }
    json!({"n": samples.len(), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

fn fsync(dir: &Path, seconds: f64) -> Result<(), String> {
    use std::os::unix::fs::FileExt as _;
    let path = dir.join(format!("gpc-bench-fsync-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Preallocated and synced first, so the loop measures data syncs only,
    // like a WAL that is overwritten in place.
    const BLOCK: usize = 4096;
    const BLOCKS: u64 = 256;
    let page = vec![0x5a_u8; BLOCK];
    for b in 0..BLOCKS {
        file.write_all_at(&page, b * BLOCK as u64)
            .map_err(|e| e.to_string())?;
    }
    file.sync_all().map_err(|e| e.to_string())?;
    let limit = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < limit {
        let t = Instant::now();
        file.write_all_at(&page, (n % BLOCKS) * BLOCK as u64)
            .map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        latencies.push(t.elapsed());
        n += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    println!(
        "{}",
        json!({
            "fdatasync_per_second": round(n as f64 / elapsed, 0),
            "latency": summary(&mut latencies),
        })
    );
    Ok(())
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}
