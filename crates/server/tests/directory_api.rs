//! The directory APIs (PDS, SDS, organisation directory) of a running
//! server, and the HTTP directory client against them: the client must read
//! back exactly what the embedded directory knows.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_directory::{
    Directory, DirectoryError, DirectoryUrls, EmbeddedDirectory, HttpDirectory, demo_region,
};
use gpc_domain::{Interaction, NhsNumber, OdsCode, Region};
use gpc_testkit::{TestServer, send};
use reqwest::RequestBuilder;
use serde_json::Value;
use std::sync::Arc;

const PDS: &str = "/personal-demographics/FHIR/R4";
const SDS: &str = "/spine-directory/FHIR/R4";
const ODS: &str = "/organisation-directory/FHIR/R4";
const CREATE: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:order";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const INTERACTION_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhsServiceInteractionId";
const ERROR_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode";

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn pds(s: &TestServer, nhs: &str) -> RequestBuilder {
    s.client
        .get(format!("{}{PDS}/Patient/{nhs}", s.base))
        .header("X-Request-ID", request_id())
}

fn sds(s: &TestServer, resource: &str, ods: &str, interaction: &str) -> RequestBuilder {
    s.client.get(format!("{}{SDS}/{resource}", s.base)).query(&[
        ("organization", format!("{ODS_SYSTEM}|{ods}")),
        ("identifier", format!("{INTERACTION_SYSTEM}|{interaction}")),
    ])
}

fn ods_get(s: &TestServer, path_and_query: &str) -> RequestBuilder {
    s.client.get(format!("{}{ODS}{path_and_query}", s.base))
}

/// Sends, checks the headers every directory answer carries, returns status and body.
async fn answer(req: RequestBuilder) -> (u16, Value) {
    let (status, headers, body) = send(req).await;
    assert_eq!(headers["cache-control"], "no-store", "{body}");
    assert_eq!(headers["content-type"], "application/fhir+json", "{body}");
    (status, body)
}

async fn ok(req: RequestBuilder) -> Value {
    let (status, body) = answer(req).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Asserts the national OperationOutcome shape with this status and code.
async fn refused(req: RequestBuilder, status: u16, code: &str) -> Value {
    let (got, body) = answer(req).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    let issue = &body["issue"][0];
    assert_eq!(issue["severity"], "error");
    let coding = issue["details"]["coding"].as_array().unwrap();
    assert_eq!(coding.len(), 1, "{body}");
    assert_eq!(coding[0]["system"], ERROR_SYSTEM);
    assert_eq!(coding[0]["code"], code, "{body}");
    assert!(issue["diagnostics"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

fn resources(bundle: &Value) -> Vec<&Value> {
    assert_eq!(bundle["resourceType"], "Bundle", "{bundle}");
    assert_eq!(bundle["type"], "searchset");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(bundle["total"], entries.len());
    entries.iter().map(|e| &e["resource"]).collect()
}

// ---- PDS ----

#[tokio::test]
async fn pds_returns_the_patient_and_echoes_the_request_and_correlation_ids() {
    let s = TestServer::start().await;
    let id = request_id();
    let resp = s
        .client
        .get(format!("{}{PDS}/Patient/9476719931", s.base))
        .header("X-Request-ID", &id)
        .header("X-Correlation-ID", "corr-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], id.as_str());
    assert_eq!(resp.headers()["x-correlation-id"], "corr-42");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["content-type"], "application/fhir+json");
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["resourceType"], "Patient");
    assert_eq!(p["id"], "9476719931");
    assert_eq!(
        p["identifier"][0]["system"],
        "https://fhir.nhs.uk/Id/nhs-number"
    );
    assert_eq!(p["identifier"][0]["value"], "9476719931");
    let name = &p["name"][0];
    assert_eq!(name["use"], "official");
    assert_eq!(name["family"], "DAWES");
    assert_eq!(name["given"], serde_json::json!(["Minnie"]));
    assert_eq!(name["prefix"], serde_json::json!(["Mrs"]));
    assert_eq!(p["gender"], "female");
    assert_eq!(p["birthDate"], "1952-05-31");
    assert_eq!(p["address"][0]["line"][0], "24 Grammar School Road");
    assert_eq!(p["address"][0]["city"], "Brigg");
    assert_eq!(p["address"][0]["postalCode"], "DN20 8AF");
    assert_eq!(p["telecom"][0]["system"], "phone");
    assert_eq!(
        p["generalPractitioner"],
        serde_json::json!([{"type": "Organization",
            "identifier": {"system": ODS_SYSTEM, "value": "GPC001"}}])
    );
    let security = &p["meta"]["security"][0];
    assert_eq!(
        security["system"],
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    );
    assert_eq!(security["code"], "U");
    assert!(p.get("deceasedDateTime").is_none());
}

#[tokio::test]
async fn pds_requires_a_uuid_request_id() {
    let s = TestServer::start().await;
    let url = format!("{}{PDS}/Patient/9476719931", s.base);
    refused(s.client.get(&url), 400, "MISSING_VALUE").await;
    for bad in [
        "abc",
        "",
        "6f1c2f0e5d5b4d6e9a3e2b1c0f9d7a11",
        "{6f1c2f0e-5d5b-4d6e-9a3e-2b1c0f9d7a11}",
    ] {
        let resp = s
            .client
            .get(&url)
            .header("X-Request-ID", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad:?}");
        assert_eq!(
            resp.headers()["x-request-id"],
            bad,
            "echoed even when refused"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["issue"][0]["details"]["coding"][0]["code"],
            "INVALID_VALUE"
        );
    }
}

#[tokio::test]
async fn pds_hides_where_a_restricted_patient_lives_and_is_registered() {
    let s = TestServer::start().await;
    let p = ok(pds(&s, "9476718897")).await;
    assert_eq!(p["name"][0]["family"], "CASSIN");
    assert_eq!(p["meta"]["security"][0]["code"], "R");
    for hidden in ["address", "telecom", "generalPractitioner"] {
        assert!(p.get(hidden).is_none(), "{hidden} shown: {p}");
    }
    assert!(!p.to_string().contains("Alkborough"));
}

#[tokio::test]
async fn pds_returns_the_deceased_with_the_date_of_death() {
    let s = TestServer::start().await;
    let p = ok(pds(&s, "9000000173")).await;
    assert_eq!(p["name"][0]["family"], "JOHNSON");
    assert_eq!(p["deceasedDateTime"], "2016-07-13");
}

#[tokio::test]
async fn pds_shows_smith_registered_at_y12345() {
    let s = TestServer::start().await;
    let p = ok(pds(&s, "9000000009")).await;
    assert_eq!(p["generalPractitioner"][0]["identifier"]["value"], "Y12345");
}

#[tokio::test]
async fn pds_refuses_invalid_numbers_and_does_not_find_unknown_ones() {
    let s = TestServer::start().await;
    for bad in [
        "9000000184",
        "1234567890",
        "947671993",
        "94767199311",
        "947%20671%209931",
        "abc",
    ] {
        let body = refused(pds(&s, bad), 400, "INVALID_RESOURCE_ID").await;
        assert_eq!(body["issue"][0]["code"], "value");
    }
    let body = refused(pds(&s, "9999999999"), 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(body["issue"][0]["code"], "not-found");
    assert!(
        !body.to_string().contains("9999999999"),
        "diagnostics repeat the number"
    );
}

// ---- SDS ----

#[tokio::test]
async fn sds_endpoint_of_a_tenant_is_its_provider_root() {
    let s = TestServer::start().await;
    let bundle = ok(sds(&s, "Endpoint", "GPC001", CREATE)).await;
    let found = resources(&bundle);
    assert_eq!(found.len(), 1, "{bundle}");
    let e = found[0];
    assert_eq!(e["resourceType"], "Endpoint");
    assert_eq!(e["status"], "active");
    assert_eq!(e["address"], format!("{}/GPC001/DSTU2/1", s.base));
    assert_eq!(e["address"], s.root("GPC001"));
    assert_eq!(
        e["managingOrganization"]["identifier"]["system"],
        ODS_SYSTEM
    );
    assert_eq!(e["managingOrganization"]["identifier"]["value"], "GPC001");
    assert!(e["connectionType"]["code"].is_string());
    let ids = e["identifier"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i["system"] == INTERACTION_SYSTEM && i["value"] == CREATE),
        "{e}"
    );
    let full_url = bundle["entry"][0]["fullUrl"].as_str().unwrap();
    assert!(
        full_url.starts_with(&format!("{}{SDS}/Endpoint/", s.base)),
        "{full_url}"
    );
    assert!(
        bundle["link"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}{SDS}/Endpoint?", s.base))
    );

    let devices = ok(sds(&s, "Device", "GPC001", CREATE)).await;
    let d = resources(&devices)[0];
    assert_eq!(d["resourceType"], "Device");
    assert_eq!(
        d["identifier"][0]["system"],
        "https://fhir.nhs.uk/Id/nhsSpineASID"
    );
    assert_eq!(d["identifier"][0]["value"], "200000000359");
    assert_eq!(d["owner"]["identifier"]["value"], "GPC001");
}

#[tokio::test]
async fn sds_has_read_endpoints_for_every_tenant() {
    let s = TestServer::start().await;
    let metadata = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata";
    let bundle = ok(sds(&s, "Endpoint", "XOA001", metadata)).await;
    assert_eq!(resources(&bundle)[0]["address"], s.root("XOA001"));
}

#[tokio::test]
async fn sds_has_no_endpoint_where_tasks_cannot_be_received() {
    let s = TestServer::start().await;
    for ods in ["X11101", "Y12345", "ZZZ999"] {
        let bundle = ok(sds(&s, "Endpoint", ods, CREATE)).await;
        assert!(resources(&bundle).is_empty(), "{ods}: {bundle}");
        assert_eq!(bundle["total"], 0);
    }
    let care_record = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord";
    assert!(resources(&ok(sds(&s, "Endpoint", "GPC001", care_record)).await).is_empty());
}

#[tokio::test]
async fn sds_device_gives_the_asid_of_a_sender_only_system_and_none_without_one() {
    let s = TestServer::start().await;
    let bundle = ok(sds(&s, "Device", "X11101", CREATE)).await;
    let found = resources(&bundle);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["identifier"][0]["value"], "200000000371");
    for ods in ["Y12345", "ZZZ999"] {
        assert!(
            resources(&ok(sds(&s, "Device", ods, CREATE)).await).is_empty(),
            "{ods}"
        );
    }
}

#[tokio::test]
async fn sds_accepts_the_bar_raw_or_percent_encoded() {
    let s = TestServer::start().await;
    for bar in ["|", "%7C", "%7c"] {
        let url = format!(
            "{}{SDS}/Endpoint?organization={ODS_SYSTEM}{bar}GPC001&identifier={INTERACTION_SYSTEM}{bar}{CREATE}",
            s.base
        );
        let bundle = ok(s.client.get(url)).await;
        assert_eq!(resources(&bundle).len(), 1, "{bar}");
    }
}

#[tokio::test]
async fn sds_refuses_missing_or_malformed_parameters() {
    let s = TestServer::start().await;
    let org = format!("organization={ODS_SYSTEM}|GPC001");
    let ident = format!("identifier={INTERACTION_SYSTEM}|{CREATE}");
    let cases = [
        (String::new(), "MISSING_VALUE"),
        (org.clone(), "MISSING_VALUE"),
        (ident.clone(), "MISSING_VALUE"),
        (format!("organization=GPC001&{ident}"), "INVALID_VALUE"),
        (
            format!("organization=https://example.org/ods|GPC001&{ident}"),
            "INVALID_VALUE",
        ),
        (
            format!("organization={ODS_SYSTEM}|&{ident}"),
            "INVALID_VALUE",
        ),
        (
            format!("organization={ODS_SYSTEM}|G!&{ident}"),
            "INVALID_VALUE",
        ),
        (format!("{org}&identifier={CREATE}"), "INVALID_VALUE"),
        (
            format!("{org}&identifier=https://fhir.nhs.uk/Id/nhsMhsPartyKey|X-1"),
            "INVALID_VALUE",
        ),
        (format!("{org}&{ident}&{org}"), "INVALID_VALUE"),
    ];
    for resource in ["Endpoint", "Device"] {
        for (query, code) in &cases {
            let url = format!("{}{SDS}/{resource}?{query}", s.base);
            refused(s.client.get(url), 400, code).await;
        }
    }
}

// ---- Organisation directory ----

#[tokio::test]
async fn ods_reads_an_organisation_by_code() {
    let s = TestServer::start().await;
    let o = ok(ods_get(&s, "/Organization/GPC001")).await;
    assert_eq!(o["resourceType"], "Organization");
    assert_eq!(o["id"], "GPC001");
    assert_eq!(o["identifier"][0]["system"], ODS_SYSTEM);
    assert_eq!(o["identifier"][0]["value"], "GPC001");
    assert_eq!(o["name"], "GP Connect Demonstrator");
    assert_eq!(o["type"][0]["text"], "GP practice");
    assert_eq!(o["telecom"][0]["system"], "phone");
    assert_eq!(o["telecom"][0]["value"], "01632 960001");
    assert_eq!(o["address"][0]["city"], "Scunthorpe");
    assert_eq!(o["active"], true);

    let y = ok(ods_get(&s, "/Organization/y12345")).await;
    assert_eq!(y["name"], "Somerset Bridge Medical Centre");
    assert_eq!(y["telecom"][0]["value"], "01632 960030");

    refused(
        ods_get(&s, "/Organization/ZZZ999"),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    refused(ods_get(&s, "/Organization/G!"), 400, "INVALID_RESOURCE_ID").await;
}

#[tokio::test]
async fn ods_searches_by_name_fragment_or_identifier() {
    let s = TestServer::start().await;
    let bundle = ok(ods_get(&s, "/Organization?name=surgery")).await;
    let found = resources(&bundle);
    assert_eq!(found.len(), 1, "{bundle}");
    assert_eq!(found[0]["name"], "The Hockey Surgery");
    assert_eq!(found[0]["id"], "R1A17");
    assert_eq!(
        bundle["entry"][0]["fullUrl"],
        format!("{}{ODS}/Organization/R1A17", s.base)
    );

    let hospital = ok(ods_get(&s, "/Organization?name=Scunthorpe%20General")).await;
    let ids: Vec<&Value> = resources(&hospital).iter().map(|o| &o["id"]).collect();
    assert_eq!(ids, ["XAE001", "XAC001"]);
    assert!(resources(&ok(ods_get(&s, "/Organization?name=nowhere")).await).is_empty());

    let by_code = ok(ods_get(
        &s,
        &format!("/Organization?identifier={ODS_SYSTEM}%7CY00001"),
    ))
    .await;
    assert_eq!(
        resources(&by_code)[0]["type"][0]["text"],
        "Extended access hub"
    );
    let unknown = ok(ods_get(
        &s,
        &format!("/Organization?identifier={ODS_SYSTEM}|ZZZ999"),
    ))
    .await;
    assert!(resources(&unknown).is_empty());
}

#[tokio::test]
async fn ods_search_refuses_a_missing_or_muddled_query() {
    let s = TestServer::start().await;
    refused(ods_get(&s, "/Organization"), 400, "MISSING_VALUE").await;
    refused(ods_get(&s, "/Organization?name="), 400, "INVALID_VALUE").await;
    refused(
        ods_get(&s, "/Organization?name=a&name=b"),
        400,
        "INVALID_VALUE",
    )
    .await;
    refused(
        ods_get(
            &s,
            &format!("/Organization?name=x&identifier={ODS_SYSTEM}|GPC001"),
        ),
        400,
        "INVALID_VALUE",
    )
    .await;
    refused(
        ods_get(&s, "/Organization?identifier=GPC001"),
        400,
        "INVALID_VALUE",
    )
    .await;
}

// ---- Shared behaviour ----

#[tokio::test]
async fn unknown_paths_and_verbs_answer_with_an_operation_outcome() {
    let s = TestServer::start().await;
    refused(
        s.client.get(format!("{}{PDS}/Patient", s.base)),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    refused(
        s.client.get(format!("{}{SDS}/Endpoints", s.base)),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    refused(
        s.client.get(format!("{}{ODS}/Location/X", s.base)),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    refused(
        s.client
            .post(format!("{}{PDS}/Patient/9476719931", s.base))
            .header("X-Request-ID", request_id()),
        405,
        "METHOD_NOT_ALLOWED",
    )
    .await;
    refused(
        s.client
            .delete(format!("{}{ODS}/Organization/GPC001", s.base)),
        405,
        "METHOD_NOT_ALLOWED",
    )
    .await;
}

#[tokio::test]
async fn the_provider_still_answers_everything_outside_the_directory_mounts() {
    let s = TestServer::start().await;
    for path in [
        "/GPC001/DSTU2/1/metadata",
        "/personal-demographics/Patient/9476719931",
    ] {
        let (status, headers, body) = send(s.client.get(format!("{}{path}", s.base))).await;
        assert!(status >= 400, "{path}: {body}");
        assert_eq!(headers["cache-control"], "no-store, no-cache", "{path}");
        assert_eq!(body["resourceType"], "OperationOutcome", "{path}");
    }
}

// ---- The HTTP client against the API ----

fn embedded(s: &TestServer) -> (EmbeddedDirectory, Arc<Region>) {
    let index = gpc_domain::region::RegionIndex::shared(demo_region());
    let region = index.current();
    let patients = Arc::new(demo_region());
    (EmbeddedDirectory::new(index, patients, &s.base), region)
}

fn http(s: &TestServer) -> HttpDirectory {
    HttpDirectory::new(DirectoryUrls::on_server(&s.base)).unwrap()
}

#[tokio::test]
async fn the_http_client_reads_back_exactly_what_the_embedded_directory_knows() {
    let s = TestServer::start().await;
    let (local, region) = embedded(&s);
    let remote = http(&s);

    for patient in &demo_region().patients {
        let nhs = patient.nhs_number;
        assert_eq!(
            remote.trace_patient(&nhs).await.unwrap(),
            local.trace_patient(&nhs).await.unwrap(),
            "patient {}",
            patient.id
        );
    }
    let unknown = NhsNumber::parse("9999999999").unwrap();
    assert!(matches!(
        remote.trace_patient(&unknown).await,
        Err(DirectoryError::NotFound(_))
    ));

    let mut codes: Vec<OdsCode> = region
        .organisations()
        .iter()
        .map(|o| o.ods.clone())
        .collect();
    codes.push(OdsCode::parse("ZZZ999").unwrap());
    let care_record = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord";
    let interactions = Interaction::ALL.map(Interaction::id);
    for ods in &codes {
        for interaction in interactions.iter().copied().chain([care_record]) {
            assert_eq!(
                remote.endpoint(ods, interaction).await.unwrap(),
                local.endpoint(ods, interaction).await.unwrap(),
                "endpoint {ods} {interaction}"
            );
            assert_eq!(
                remote.asid(ods, interaction).await.unwrap(),
                local.asid(ods, interaction).await.unwrap(),
                "asid {ods} {interaction}"
            );
        }
        assert_eq!(
            remote.organisation(ods).await.unwrap(),
            local.organisation(ods).await.unwrap(),
            "organisation {ods}"
        );
    }
    let gpc = OdsCode::parse("GPC001").unwrap();
    let endpoint = remote.endpoint(&gpc, CREATE).await.unwrap().unwrap();
    assert_eq!(endpoint.address, s.root("GPC001"));
    assert_eq!(endpoint.asid.as_str(), "200000000359");

    for text in [
        "surgery",
        "HOCKEY",
        "r1a1",
        "Scunthorpe General",
        "x",
        "nowhere",
        " ",
    ] {
        assert_eq!(
            remote.search_organisations(text).await.unwrap(),
            local.search_organisations(text).await.unwrap(),
            "search {text:?}"
        );
    }
}

#[tokio::test]
async fn the_http_client_reports_a_closed_port_as_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let remote = HttpDirectory::new(DirectoryUrls::on_server(&format!(
        "http://127.0.0.1:{port}"
    )))
    .unwrap();
    let nhs = NhsNumber::parse("9476719931").unwrap();
    let ods = OdsCode::parse("GPC001").unwrap();
    let unavailable = |r: Result<(), DirectoryError>| {
        assert!(matches!(r, Err(DirectoryError::Unavailable(_))), "{r:?}");
    };
    let err = remote.trace_patient(&nhs).await.map(drop);
    if let Err(e) = &err {
        assert!(!e.to_string().contains("9476719931"), "the URL leaked: {e}");
    }
    unavailable(err);
    unavailable(remote.endpoint(&ods, CREATE).await.map(drop));
    unavailable(remote.asid(&ods, CREATE).await.map(drop));
    unavailable(remote.organisation(&ods).await.map(drop));
    unavailable(remote.search_organisations("surgery").await.map(drop));
}
