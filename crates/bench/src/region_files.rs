//! `gpc-bench region-files`: a fictional region at national scale in the
//! import formats of reference-data.md §1, for `bench/region`: an ODS
//! extract of `practices` GP practices, their Spine systems (every one
//! receives tasks; one `*` agreement), a practitioner each, and `patients`
//! patients registered across them with a record each at their practice.
//! Names, addresses and numbers are made up; NHS numbers pass Modulus 11
//! and start with 97 (none of the demo region's).

use gpc_domain::NhsNumber;
use serde_json::json;
use std::io::{BufWriter, Write};
use std::path::Path;

const GIVEN: [&str; 8] = ["Alex", "Bea", "Cal", "Dee", "Eli", "Fay", "Gus", "Hana"];
const FAMILY: [&str; 8] = [
    "EXAMPLE", "SAMPLE", "TESTER", "MODEL", "PATTERN", "SPECIMEN", "PROTO", "DUMMY",
];

/// The ODS code of practice `i`: `P` and five digits (fictional).
pub fn practice_code(i: usize) -> String {
    format!("P{i:05}")
}

/// The ten-digit numbers starting 97 that pass Modulus 11, in order.
pub fn nhs_numbers() -> impl Iterator<Item = NhsNumber> {
    (0..100_000_000u64).filter_map(|n| NhsNumber::parse(&format!("97{n:08}")).ok())
}

fn create(dir: &Path, name: &str) -> Result<BufWriter<std::fs::File>, String> {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn write(dir: &Path, practices: usize, patients: usize) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| e.to_string();
    let mut ods = create(dir, "epraccur.csv")?;
    for i in 0..practices {
        let code = practice_code(i);
        let row = [
            code.as_str(),
            &format!("PRACTICE {i} MEDICAL CENTRE"),
            "Y63",
            "QOQ",
            &format!("{} HIGH STREET", 1 + i % 200),
            "",
            "",
            "EXAMPLETON",
            "",
            &format!("EX{} {}AA", i % 99, i % 9),
            "19740401",
            "",
            "A",
            "B",
            "00T",
            "20130401",
            "",
            "01632 960999",
            "",
            "",
            "",
            "0",
            "",
            "1",
            "",
            "4",
            "",
        ];
        let quoted: Vec<String> = row.iter().map(|c| format!("\"{c}\"")).collect();
        writeln!(ods, "{}", quoted.join(",")).map_err(io)?;
    }
    ods.flush().map_err(io)?;

    let mut spine = create(dir, "spine.toml")?;
    for i in 0..practices {
        writeln!(
            spine,
            "[[system]]\nods = \"{}\"\nasid = \"{}\"\nreceives_tasks = true\n",
            practice_code(i),
            300_000_000_000u64 + i as u64
        )
        .map_err(io)?;
    }
    writeln!(
        spine,
        "[[agreement]]\nfrom = \"*\"\nto = \"*\"\ninteraction = \"create:order\""
    )
    .map_err(io)?;
    spine.flush().map_err(io)?;

    let mut users = create(dir, "practitioners.csv")?;
    writeln!(
        users,
        "sds_user_id,family,given,prefix,ods,role_code,role_name"
    )
    .map_err(io)?;
    for i in 0..practices {
        writeln!(
            users,
            "G8{i:07},{},{},Dr,{},R0260,General Medical Practitioner",
            FAMILY[i % 8],
            GIVEN[i % 8],
            practice_code(i)
        )
        .map_err(io)?;
    }
    users.flush().map_err(io)?;

    let mut people = create(dir, "patients.ndjson")?;
    let mut records = create(dir, "records.csv")?;
    writeln!(records, "holder_ods,nhs_number,registration,ended").map_err(io)?;
    for (i, nhs) in nhs_numbers().take(patients).enumerate() {
        let nhs = nhs.as_digits();
        let practice = practice_code(i % practices.max(1));
        let gender = ["female", "male", "other", "unknown"][i % 4];
        let patient = json!({
            "resourceType": "Patient",
            "id": nhs,
            "identifier": [{
                "system": "https://fhir.nhs.uk/Id/nhs-number",
                "value": nhs,
                "extension": [{
                    "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
                    "valueCodeableConcept": {"coding": [{
                        "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus",
                        "code": "01"
                    }]}
                }]
            }],
            "name": [{"use": "usual", "family": FAMILY[i % 8], "given": [GIVEN[(i / 8) % 8]], "prefix": ["Mx"]}],
            "gender": gender,
            "birthDate": format!("{}-{:02}-{:02}", 1930 + i % 90, 1 + i % 12, 1 + i % 28),
            "address": [{"line": [format!("{} Example Road", 1 + i % 500)], "city": "Exampleton", "postalCode": format!("EX{} {}BB", i % 99, i % 9)}],
            "telecom": [{"system": "phone", "value": "01632 960998", "use": "home"}],
            "generalPractitioner": [{"type": "Organization", "identifier": {
                "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": practice}}]
        });
        writeln!(people, "{patient}").map_err(io)?;
        writeln!(records, "{practice},{nhs},registered,").map_err(io)?;
    }
    people.flush().map_err(io)?;
    records.flush().map_err(io)?;
    println!(
        "{}",
        json!({"practices": practices, "patients": patients, "records": patients, "dir": dir.display().to_string()})
    );
    Ok(())
}
