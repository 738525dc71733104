//! Region import (reference-data.md): `gpc-tasks import ...` of every
//! format, good and bad, all or nothing, idempotent, with stable ids; a
//! running server (every instance, on PostgreSQL too) serving the new data
//! without a restart; a task between two imported practices through the
//! SSP; `serve --no-demo`. On SQLite always, and on PostgreSQL when
//! TEST_DATABASE_URL is set (CI sets it).

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::reference::ReferenceData;
use gpc_store::test_support::TestDatabase;
use gpc_store::{PostgresStore, SqliteStore, Store};
use gpc_testkit::{PATIENCE, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

/// Where the commands' data lives.
enum Place {
    Dir(PathBuf),
    /// The database, and a folder for each command's `--data-dir` (which
    /// PostgreSQL leaves unused).
    Db(String, tempfile::TempDir),
}

impl Place {
    fn apply(&self, cmd: &mut Command) {
        match self {
            Place::Dir(dir) => {
                cmd.arg("--data-dir").arg(dir).env_remove("DATABASE_URL");
            }
            Place::Db(url, dir) => {
                cmd.arg("--data-dir")
                    .arg(dir.path())
                    .env("DATABASE_URL", url);
            }
        }
    }

    async fn store(&self) -> std::sync::Arc<dyn Store> {
        match self {
            Place::Dir(dir) => std::sync::Arc::new(SqliteStore::open(dir).unwrap()),
            Place::Db(url, _) => std::sync::Arc::new(PostgresStore::connect(url).await.unwrap()),
        }
    }

    async fn reference(&self) -> ReferenceData {
        self.store().await.reference_data().await.unwrap()
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/region")
}

fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

/// `gpc-tasks ARGS` with the data at `place`.
fn run(place: &Place, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "warn");
    place.apply(&mut cmd);
    tokio::task::block_in_place(|| cmd.output().unwrap())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The example region, file by file, as the README loads it.
fn import_examples(place: &Place) -> Vec<String> {
    let epraccur = example("epraccur.csv");
    let steps: [Vec<&str>; 5] = [
        vec![
            "import",
            "organisations",
            &epraccur,
            "--care-setting",
            "GP practice",
        ],
        vec!["import", "spine", EXAMPLE_SPINE],
        vec!["import", "practitioners", EXAMPLE_PRACTITIONERS],
        vec!["import", "patients", EXAMPLE_PATIENTS],
        vec!["import", "records", EXAMPLE_RECORDS],
    ];
    steps
        .iter()
        .map(|args| {
            let args: Vec<String> = args
                .iter()
                .map(|a| match *a {
                    EXAMPLE_SPINE => example("spine.toml"),
                    EXAMPLE_PRACTITIONERS => example("practitioners.csv"),
                    EXAMPLE_PATIENTS => example("patients.ndjson"),
                    EXAMPLE_RECORDS => example("records.csv"),
                    other => other.to_owned(),
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(run(place, &args))
        })
        .collect()
}

const EXAMPLE_SPINE: &str = "@spine";
const EXAMPLE_PRACTITIONERS: &str = "@practitioners";
const EXAMPLE_PATIENTS: &str = "@patients";
const EXAMPLE_RECORDS: &str = "@records";

async fn every_format_imports_once(place: Place) {
    let first = import_examples(&place);
    assert_eq!(
        first,
        [
            "organisations: 3 added, 0 changed, 0 left as they were\n",
            "organisations: 0 added, 3 changed, 0 left as they were\n\
             sharing agreements: 1 added, 0 changed, 0 left as they were\n",
            "practitioners: 4 added, 0 changed, 0 left as they were\n",
            "patients: 4 added, 0 changed, 0 left as they were\n",
            "patient records: 6 added, 0 changed, 0 left as they were\n",
        ]
    );
    let stored = place.reference().await;
    let q10001 = stored
        .organisations
        .iter()
        .find(|o| o.ods == "Q10001")
        .unwrap();
    assert_eq!(q10001.id, "Q10001");
    assert_eq!(q10001.asid.as_ref().unwrap().as_str(), "200000001001");
    // The Spine file's telephone overrides the ODS extract's.
    assert_eq!(q10001.telephone, "01632 960601");
    assert_eq!(q10001.address.as_ref().unwrap().postcode, "EX1 1AA");
    let q10003 = stored
        .organisations
        .iter()
        .find(|o| o.ods == "Q10003")
        .unwrap();
    assert!(q10003.is_closed());
    // `*` to `*` is one row, not one per pair.
    assert_eq!(stored.agreements.len(), 1);
    let restricted = stored
        .patients
        .iter()
        .find(|p| p.family == "PRIVATE")
        .unwrap();
    assert!(restricted.sensitive && restricted.telephone.is_none());
    let late = stored.patients.iter().find(|p| p.family == "LATE").unwrap();
    assert_eq!(late.deceased.unwrap().to_string(), "2024-02-02");
    // A patient's id does not give their NHS number away.
    assert!(
        stored
            .patients
            .iter()
            .all(|p| p.id != p.nhs_number.as_digits())
    );
    let ended: Vec<_> = stored
        .records
        .iter()
        .filter(|r| r.ended.is_some())
        .collect();
    assert_eq!(ended.len(), 1);

    // The same files again change nothing, and no id moves.
    let version = place.store().await.reference_version().await.unwrap();
    let again = import_examples(&place);
    for summary in &again {
        assert!(summary.contains(" 0 added, 0 changed"), "{summary}");
    }
    assert_eq!(place.reference().await, stored);
    assert_eq!(
        place.store().await.reference_version().await.unwrap(),
        version,
        "an import that changes nothing writes nothing"
    );
    // A changed name is a change of that row alone, under the same id.
    let renamed = tempfile::NamedTempFile::new().unwrap();
    let csv = std::fs::read_to_string(examples().join("epraccur.csv")).unwrap();
    std::fs::write(
        renamed.path(),
        csv.replace("HILLTOP SURGERY", "HILLTOP HEALTH CENTRE"),
    )
    .unwrap();
    let out = ok(run(
        &place,
        &[
            "import",
            "organisations",
            renamed.path().to_str().unwrap(),
            "--care-setting",
            "GP practice",
        ],
    ));
    assert_eq!(
        out,
        "organisations: 0 added, 1 changed, 2 left as they were\n"
    );
    let after = place.reference().await;
    let ids = |d: &ReferenceData| -> Vec<String> {
        let orgs = d.organisations.iter().map(|o| o.id.clone());
        let patients = d.patients.iter().map(|p| p.id.clone());
        let users = d.practitioners.iter().map(|p| p.id.clone());
        orgs.chain(patients).chain(users).collect()
    };
    assert_eq!(ids(&after), ids(&stored));
    assert!(
        after
            .organisations
            .iter()
            .any(|o| o.name == "HILLTOP HEALTH CENTRE")
    );

    let shown: Value =
        serde_json::from_str(&ok(run(&place, &["region", "show", "--json"]))).unwrap();
    assert_eq!(shown["counts"]["organisations"], 3);
    assert_eq!(shown["counts"]["patients"], 4);
    assert_eq!(shown["counts"]["patient_records"], 6);
    assert_eq!(shown["counts"]["practitioners"], 4);
    assert_eq!(shown["counts"]["sharing_agreements"], 1);
    assert_eq!(shown["organisations"][2]["status"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_imports_and_a_second_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    every_format_imports_once(Place::Dir(dir.path().to_owned())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_imports_and_a_second_import_changes_nothing_on_postgres() {
    let Some(db) = TestDatabase::create("region_import_formats").await else {
        return;
    };
    every_format_imports_once(Place::Db(db.url().to_owned(), tempfile::tempdir().unwrap())).await;
}

/// Writes `content` to a file named `name` in `dir` and imports it as `kind`.
fn import_text(place: &Place, dir: &Path, kind: &str, name: &str, content: &str) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let path = path.display().to_string();
    let mut args = vec!["import", kind, path.as_str()];
    if kind == "organisations" {
        args.extend(["--care-setting", "GP practice"]);
    }
    run(place, &args)
}

/// An epraccur row of the example layout with `changes` (1-based column, value).
fn ods_row(changes: &[(usize, &str)]) -> String {
    let csv = std::fs::read_to_string(examples().join("epraccur.csv")).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes());
    let mut row: Vec<String> = reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    for (column, value) in changes {
        row[column - 1] = (*value).to_owned();
    }
    row.iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",")
}

fn patient_line(nhs: &str, edit: impl FnOnce(&mut Value)) -> String {
    let text = std::fs::read_to_string(examples().join("patients.ndjson")).unwrap();
    let mut patient: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    patient["id"] = nhs.into();
    patient["identifier"][0]["value"] = nhs.into();
    edit(&mut patient);
    patient.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_row_is_reported_with_its_line_and_field_and_nothing_is_imported() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let place = Place::Dir(data.path().to_owned());
    import_examples(&place);
    let before = place.reference().await;
    let header = "sds_user_id,family,given,prefix,ods,role_code,role_name\n";
    let records = "holder_ods,nhs_number,registration,ended\n";
    let good_user = "G70000001,NEW,Nia,Dr,Q10001,R0260,General Medical Practitioner\n";
    // (kind, file content, what the error output must say)
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "organisations",
            format!("{}\n\"Q1\",\"x\"\n", ods_row(&[(1, "Q10009")])),
            vec!["bad.txt:2: row: expected 27 columns (the ODS standard extract layout), found 2"],
        ),
        (
            "organisations",
            ods_row(&[(1, "q-1")]),
            vec!["bad.txt:1: code (column 1): not an ODS code"],
        ),
        (
            "organisations",
            ods_row(&[(1, "Q10009"), (11, "2020-01-01"), (13, "X"), (2, "")]),
            vec![
                "bad.txt:1: name (column 2): empty",
                "bad.txt:1: open date (column 11): not a date as YYYYMMDD",
                "bad.txt:1: status code (column 13): must be A, C, D or P",
            ],
        ),
        (
            "organisations",
            format!("{}\n{}\n", ods_row(&[(1, "Q10009")]), ods_row(&[(1, "Q10009")])),
            vec!["bad.txt:2: code (column 1): the same code is on an earlier line"],
        ),
        (
            "spine",
            "[[system]]\nods = \"Q10001\"\nasid = \"2000-01\"\nreceives_tasks = true\n".to_owned(),
            vec!["bad.txt:1: asid: an ASID is digits only"],
        ),
        (
            "spine",
            "[[system]]\nods = \"Q99999\"\nasid = \"1\"\nreceives_tasks = true\n".to_owned(),
            vec!["bad.txt:1: ods: no organisation has this code"],
        ),
        (
            "spine",
            "[[system]]\nods = \"Q10002\"\nasid = \"200000001001\"\nreceives_tasks = true\n"
                .to_owned(),
            vec!["bad.txt:1: asid: already the ASID of Q10001"],
        ),
        (
            "spine",
            "\n[[agreement]]\nfrom = \"Q10001\"\nto = \"Y99999\"\ninteraction = \"create:order\"\n\n[[agreement]]\nfrom = \"*\"\nto = \"*\"\ninteraction = \"create:appointment\"\n".to_owned(),
            vec![
                "bad.txt:2: to: no organisation with a Spine system has this code",
                "bad.txt:7: interaction: not a GP Connect interaction",
            ],
        ),
        (
            "spine",
            "[[system]]\nods = \"Q10001\"\nasid = \"1\"\nreceives_tasks = true\ncolour = \"red\"\n"
                .to_owned(),
            vec!["bad.txt:5: toml: unknown field `colour`"],
        ),
        (
            "practitioners",
            "sds_user_id,family\nG1,X\n".to_owned(),
            vec!["bad.txt:1: header: the header must be sds_user_id,family,given,prefix,ods,role_code,role_name"],
        ),
        (
            "practitioners",
            format!("{header}{good_user}G7000000!,,Nia,Dr,Q99999,R0260,\n"),
            vec![
                "bad.txt:3: sds_user_id: letters and digits",
                "bad.txt:3: family: empty",
                "bad.txt:3: ods: no organisation has this code",
                "bad.txt:3: role_name: empty",
            ],
        ),
        (
            "patients",
            format!(
                "{}\n{{not json\n{}\n",
                patient_line("9730000050", |_| {}),
                patient_line("9000000184", |_| {})
            ),
            vec![
                "bad.txt:2: json: not JSON",
                "bad.txt:3: identifier.value: the NHS number fails the Modulus 11 check",
            ],
        ),
        (
            "patients",
            patient_line("9730000050", |p| {
                p["birthDate"] = "02/07/1961".into();
                p["gender"] = "f".into();
                p["generalPractitioner"][0]["identifier"]["value"] = "Y99999".into();
                p["name"][0]["family"] = "".into();
            }),
            vec![
                "bad.txt:1: name.family: empty or missing",
                "bad.txt:1: gender: must be male, female, other or unknown",
                "bad.txt:1: birthDate: missing or not a date as YYYY-MM-DD",
                "bad.txt:1: generalPractitioner: no organisation has this code",
            ],
        ),
        (
            "records",
            format!("{records}Q10001,9730000018,registered,\nQ10002,9999999999,referral,31/12/2023\nQ10002,1234567890,lodger,\n"),
            vec![
                "bad.txt:3: nhs_number: no patient has this NHS number",
                "bad.txt:3: ended: not a date as YYYY-MM-DD",
                "bad.txt:4: nhs_number: the NHS number fails the Modulus 11 check",
                "bad.txt:4: registration: must be registered, extended-access or referral",
            ],
        ),
    ];
    for (kind, content, expected) in cases {
        let out = import_text(&place, files.path(), kind, "bad.txt", &content);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{kind}: {said}");
        for line in expected {
            let line = line.replace(
                "bad.txt",
                &files.path().join("bad.txt").display().to_string(),
            );
            assert!(
                said.contains(&line),
                "{kind}: expected {line:?} in:\n{said}"
            );
        }
        assert!(said.contains("nothing was imported"), "{said}");
        assert_eq!(place.reference().await, before, "{kind}: the store changed");
    }

    // At most 50 problems are shown, then a count.
    let many: String = (0..60).map(|_| "Q10001,1234567890,registered,\n").collect();
    let out = import_text(
        &place,
        files.path(),
        "records",
        "many.csv",
        &format!("{records}{many}"),
    );
    let said = text(&out);
    assert_eq!(
        said.matches("nhs_number: the NHS number fails").count(),
        50,
        "{said}"
    );
    assert!(said.contains("10 more problems not shown"), "{said}");
}

async fn a_bad_last_line_leaves_the_store_as_it_was(place: Place) {
    let files = tempfile::tempdir().unwrap();
    import_examples(&place);
    let before = place.reference().await;
    let version = place.store().await.reference_version().await.unwrap();
    // Two new patients and a changed one, then a bad last line.
    let good = [
        patient_line("9730000050", |_| {}),
        patient_line("9730000069", |_| {}),
        patient_line("9730000018", |p| {
            p["name"][0]["given"][0] = json_str("Alexa")
        }),
    ];
    let bad = patient_line("9730000077", |p| p["gender"] = json_str("f"));
    let content = format!("{}\n{bad}\n", good.join("\n"));
    let out = import_text(
        &place,
        files.path(),
        "patients",
        "patients.ndjson",
        &content,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("patients.ndjson:4: gender"),
        "{}",
        text(&out)
    );
    assert_eq!(place.reference().await, before);
    assert_eq!(
        place.store().await.reference_version().await.unwrap(),
        version
    );
    // Without the bad line the rest goes in.
    let out = ok(import_text(
        &place,
        files.path(),
        "patients",
        "patients.ndjson",
        &good.join("\n"),
    ));
    assert_eq!(out, "patients: 2 added, 1 changed, 0 left as they were\n");
}

fn json_str(s: &str) -> Value {
    Value::from(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_last_line_leaves_the_store_as_it_was_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_bad_last_line_leaves_the_store_as_it_was(Place::Dir(dir.path().to_owned())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_last_line_leaves_the_store_as_it_was_on_postgres() {
    let Some(db) = TestDatabase::create("region_import_all_or_nothing").await else {
        return;
    };
    a_bad_last_line_leaves_the_store_as_it_was(Place::Db(
        db.url().to_owned(),
        tempfile::tempdir().unwrap(),
    ))
    .await;
}

/// A `gpc-tasks serve` on a free port.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(place: &Place, extra: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("GPC_RETRY_DELAYS_MS", "100,200,300")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    place.apply(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::task::block_in_place(|| lines.next().unwrap().unwrap());
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

const REQUEST_ID: &str = "60f5e1d4-52b5-4c6a-9e7a-9d4f1c9f6a01";

async fn status_and_body(url: String) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .get(url)
        .header("x-request-id", REQUEST_ID)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Waits until `server` answers from the example region: ODS, PDS, SDS, a
/// provider look-up (through the SSP's registry) and the sign-in list.
async fn serves_the_example_region(server: &Server) {
    let base = &server.base;
    wait_for(
        PATIENCE,
        "ODS to know Q10001",
        async || match status_and_body(format!(
            "{base}/organisation-directory/FHIR/R4/Organization/Q10001"
        ))
        .await
        {
            (200, body) if body["name"] == "RIVERSIDE MEDICAL PRACTICE" => Ok(()),
            other => Err(other),
        },
    )
    .await;
    let (status, patient) = status_and_body(format!(
        "{base}/personal-demographics/FHIR/R4/Patient/9730000026"
    ))
    .await;
    assert_eq!(status, 200, "{patient}");
    assert_eq!(patient["name"][0]["family"], "SAMPLE");
    let (status, endpoints) = status_and_body(format!(
        "{base}/spine-directory/FHIR/R4/Endpoint?organization=https://fhir.nhs.uk/Id/ods-organization-code|Q10002&identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId|urn:nhs:names:services:gpconnect:fhir:rest:create:order"
    ))
    .await;
    assert_eq!(status, 200, "{endpoints}");
    assert!(
        endpoints.to_string().contains("/Q10002/DSTU2/1"),
        "{endpoints}"
    );
    let page = reqwest::get(format!("{base}/sign-in"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("RIVERSIDE MEDICAL PRACTICE"), "sign-in list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_serves_an_import_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::Dir(dir.path().to_owned());
    let server = serve(&place, &[]);
    let base = server.base.clone();
    // An empty folder got the demo region.
    let (status, _) = status_and_body(format!(
        "{base}/organisation-directory/FHIR/R4/Organization/GPC001"
    ))
    .await;
    assert_eq!(status, 200);
    let (status, _) = status_and_body(format!(
        "{base}/organisation-directory/FHIR/R4/Organization/Q10001"
    ))
    .await;
    assert_eq!(status, 404);
    import_examples(&place);
    serves_the_example_region(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_on_postgres_serves_an_import_without_a_restart() {
    let Some(db) = TestDatabase::create("region_import_live").await else {
        return;
    };
    let place = Place::Db(db.url().to_owned(), tempfile::tempdir().unwrap());
    let a = serve(&place, &[]);
    let b = serve(&place, &[]);
    import_examples(&place);
    serves_the_example_region(&a).await;
    serves_the_example_region(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_no_demo_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::Dir(dir.path().to_owned());
    let server = serve(&place, &["--no-demo"]);
    let (status, _) = status_and_body(format!(
        "{}/organisation-directory/FHIR/R4/Organization/GPC001",
        server.base
    ))
    .await;
    assert_eq!(status, 404);
    let shown: Value =
        serde_json::from_str(&ok(run(&place, &["region", "show", "--json"]))).unwrap();
    assert_eq!(shown["counts"]["organisations"], 0);
    // `import demo` loads what a first start loads, and the server picks it up.
    assert!(ok(run(&place, &["import", "demo"])).contains("organisations: 13 added"));
    wait_for(
        PATIENCE,
        "the demo region to be served",
        async || match status_and_body(format!(
            "{}/organisation-directory/FHIR/R4/Organization/GPC001",
            server.base
        ))
        .await
        {
            (200, _) => Ok(()),
            other => Err(other),
        },
    )
    .await;
}

/// `send` from a folder of the sender's own, which knows its users.
fn send(server: &Server, sender: &Place, user: &str, nhs: &str, to: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "send",
        "--as",
        user,
        "--patient",
        nhs,
        "--type",
        "action",
        "--to",
        to,
        "--text",
        "Please review the medication.",
    ])
    .env("GPC_SERVER", &server.base)
    .env("GPC_RETRY_DELAYS_MS", "100,200,300")
    .env("RUST_LOG", "warn");
    sender.apply(&mut cmd);
    tokio::task::block_in_place(|| cmd.output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_goes_between_two_imported_practices_through_the_ssp() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::Dir(dir.path().to_owned());
    let server = serve(&place, &["--no-demo"]);
    import_examples(&place);
    serves_the_example_region(&server).await;
    // The sending system's own folder: its organisations and users.
    let sender_dir = tempfile::tempdir().unwrap();
    let sender = Place::Dir(sender_dir.path().to_owned());
    ok(run(
        &sender,
        &[
            "import",
            "organisations",
            &example("epraccur.csv"),
            "--care-setting",
            "GP practice",
        ],
    ));
    ok(run(
        &sender,
        &["import", "practitioners", &example("practitioners.csv")],
    ));

    let out = send(&server, &sender, "G60000001", "9730000026", "Q10002");
    assert!(out.status.success(), "{}", text(&out));
    let inbox = ok(run(&place, &["inbox", "--org", "Q10002", "--json"]));
    let tasks: Vec<Value> = inbox
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tasks.len(), 1, "{inbox}");
    assert_eq!(tasks[0]["from_ods"], "Q10001", "{inbox}");

    // A closed practice is kept, and a task to it is refused with the reason.
    let out = send(&server, &sender, "G60000001", "9730000018", "Q10003");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is closed"), "{}", text(&out));
}

async fn concurrent_imports_give_each_row_one_id(place: Place) {
    let epraccur = example("epraccur.csv");
    ok(run(
        &place,
        &[
            "import",
            "organisations",
            &epraccur,
            "--care-setting",
            "GP practice",
        ],
    ));
    let spawn = |kind: &str, file: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["import", kind, &example(file)])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        place.apply(&mut cmd);
        cmd.spawn().unwrap()
    };
    // Two of each at once: every patient and practitioner once, under one id.
    let children = [
        spawn("patients", "patients.ndjson"),
        spawn("patients", "patients.ndjson"),
        spawn("practitioners", "practitioners.csv"),
        spawn("practitioners", "practitioners.csv"),
    ];
    for child in children {
        let out = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stored = place.reference().await;
    assert_eq!(stored.patients.len(), 4);
    assert_eq!(stored.practitioners.len(), 4);
    let ids: std::collections::HashSet<_> = stored.patients.iter().map(|p| &p.id).collect();
    assert_eq!(ids.len(), 4);
    // Whichever id won is the one every later import keeps.
    let again = ok(run(
        &place,
        &["import", "patients", &example("patients.ndjson")],
    ));
    assert_eq!(again, "patients: 0 added, 0 changed, 4 left as they were\n");
    assert_eq!(place.reference().await, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_give_each_row_one_id_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_imports_give_each_row_one_id(Place::Dir(dir.path().to_owned())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_give_each_row_one_id_on_postgres() {
    let Some(db) = TestDatabase::create("region_import_concurrent").await else {
        return;
    };
    concurrent_imports_give_each_row_one_id(Place::Db(
        db.url().to_owned(),
        tempfile::tempdir().unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_systems_listed_interactions_replace_the_default_rule() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let place = Place::Dir(data.path().to_owned());
    import_examples(&place);
    let spine = "[[system]]\nods = \"Q10002\"\nasid = \"200000001002\"\nreceives_tasks = true\n\
                 interactions = { sends = [\"read:metadata\"], receives = [\"urn:nhs:names:services:gpconnect:fhir:rest:read:metadata\", \"create:order\"] }\n";
    let out = ok(import_text(
        &place,
        files.path(),
        "spine",
        "spine.toml",
        spine,
    ));
    assert_eq!(
        out,
        "organisations: 0 added, 1 changed, 0 left as they were\n"
    );
    let shown: Value =
        serde_json::from_str(&ok(run(&place, &["region", "show", "--json"]))).unwrap();
    let q10002 = shown["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["ods"] == "Q10002")
        .unwrap();
    assert_eq!(
        q10002["sends"],
        serde_json::json!(["urn:nhs:names:services:gpconnect:fhir:rest:read:metadata"])
    );
    assert_eq!(
        q10002["receives"],
        serde_json::json!([
            "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata",
            "urn:nhs:names:services:gpconnect:fhir:rest:create:order"
        ])
    );
    // The same again changes nothing.
    let again = ok(import_text(
        &place,
        files.path(),
        "spine",
        "spine.toml",
        spine,
    ));
    assert_eq!(
        again,
        "organisations: 0 added, 0 changed, 1 left as they were\n"
    );
}
