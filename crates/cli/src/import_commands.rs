//! `gpc-tasks import ...` and `gpc-tasks region show` (reference-data.md §2):
//! a file is read and checked whole against what the store holds; every
//! problem is printed with its file, line and field and nothing is written;
//! otherwise the added and changed rows go into the store in one
//! transaction, which running servers pick up within a few seconds.

use crate::DataArgs;
use gpc_directory::import::{self, ImportError, Plan};
use gpc_domain::Interaction;
use gpc_domain::reference::ReferenceData;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum ImportWhat {
    /// Organisations from an ODS standard CSV extract (epraccur.csv: no header, 27 columns).
    Organisations {
        file: PathBuf,
        /// What the file holds, e.g. "GP practice" for epraccur.csv.
        #[arg(long)]
        care_setting: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Spine systems and sharing agreements from TOML.
    Spine {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Practitioners from CSV (sds_user_id,family,given,prefix,ods,role_code,role_name).
    Practitioners {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Patients from NDJSON, one FHIR R4 Patient per line as PDS returns it.
    Patients {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Patient records from CSV (holder_ods,nhs_number,registration,ended).
    Records {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// The demo region, as the first start of an empty data directory loads it.
    Demo {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum RegionAction {
    /// How many of each kind of reference data the store holds, and what
    /// each organisation can do.
    Show {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Exit 0 with what changed, or 1 with every problem (nothing written).
pub async fn import(what: ImportWhat) -> Result<ExitCode, String> {
    let (data, file) = match &what {
        ImportWhat::Organisations { data, file, .. }
        | ImportWhat::Spine { data, file }
        | ImportWhat::Practitioners { data, file }
        | ImportWhat::Patients { data, file }
        | ImportWhat::Records { data, file } => (data, Some(file.as_path())),
        ImportWhat::Demo { data } => (data, None),
    };
    let text = file.map(read).transpose()?;
    let text = text.as_deref().unwrap_or_default();
    let name = file.map_or_else(String::new, |f| f.display().to_string());
    let store = data.store().await?;
    let existing = store
        .reference_data()
        .await
        .map_err(|e| format!("cannot read the reference data: {e}"))?;
    let parsed: Result<ReferenceData, ImportError> = match &what {
        ImportWhat::Organisations { care_setting, .. } => {
            import::organisations(&name, text, care_setting, &existing)
        }
        ImportWhat::Spine { .. } => import::spine(&name, text, &existing),
        ImportWhat::Practitioners { .. } => import::practitioners(&name, text, &existing),
        ImportWhat::Patients { .. } => import::patients(&name, text, &existing),
        ImportWhat::Records { .. } => import::records(&name, text, &existing),
        ImportWhat::Demo { .. } => Ok(gpc_directory::demo_region()),
    };
    let incoming = match parsed {
        Ok(incoming) => incoming,
        Err(problems) => {
            eprintln!("{problems}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let plan: Plan = import::plan(&existing, incoming);
    drop(existing);
    if !plan.is_empty() {
        store
            .upsert_reference(&plan.rows)
            .await
            .map_err(|e| format!("cannot write the reference data (nothing was imported): {e}"))?;
    }
    store
        .flush()
        .await
        .map_err(|e| format!("cannot write the reference data: {e}"))?;
    for line in plan.summary() {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn read(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => format!("{}: not UTF-8 text", file.display()),
        _ => format!("cannot read {}: {e}", file.display()),
    })
}

pub async fn region(action: RegionAction) -> Result<ExitCode, String> {
    let RegionAction::Show { json, data } = action;
    let store = data.existing_store().await?;
    let read = |e: gpc_store::StoreError| format!("cannot read the reference data: {e}");
    let counts = store.reference_counts().await.map_err(read)?;
    let index = store.reference_index().await.map_err(read)?;
    let names = [
        "organisations",
        "patients",
        "patient_records",
        "practitioners",
        "sharing_agreements",
    ];
    if json {
        let organisations: Vec<_> = index
            .organisations
            .iter()
            .map(|o| {
                json!({
                    "ods": o.ods.as_str(),
                    "name": o.name,
                    "care_setting": o.care_setting,
                    "status": o.status.as_str(),
                    "asid": o.asid.as_ref().map(|a| a.as_str()),
                    "receives_tasks": o.receives_tasks,
                    "sends": o.has_root().then(|| o.sends().iter().map(|i| i.id()).collect::<Vec<_>>()),
                    "receives": Interaction::ALL.into_iter().filter(|i| o.serves(*i)).map(|i| i.id()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let counts: serde_json::Map<_, _> = names
            .iter()
            .zip(counts)
            .map(|(n, c)| ((*n).to_owned(), json!(c)))
            .collect();
        println!(
            "{}",
            json!({"counts": counts, "organisations": organisations})
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (name, count) in names.iter().zip(counts) {
        println!("{}: {count}", name.replace('_', " "));
    }
    for o in &index.organisations {
        let can = match (
            &o.asid,
            o.receives_tasks || o.serves(Interaction::CreateTask),
        ) {
            (None, _) => "no Spine system".to_owned(),
            (Some(asid), true) => format!("ASID {asid}, receives tasks"),
            (Some(asid), false) => format!("ASID {asid}, sends only"),
        };
        println!(
            "{}\t{}\t{}\t{}\t{can}",
            o.ods,
            o.name,
            o.care_setting,
            o.status.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}
