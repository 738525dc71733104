//! Reference data replaced while the server runs (an import, later): every
//! part answers from the new data at once, and the store is not involved.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// A test helper that fails is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_directory::demo_region;
use gpc_domain::Asid;
use gpc_testkit::*;
use serde_json::Value;

const ODS: &str = "/organisation-directory/FHIR/R4";

async fn ods_name(s: &TestServer, code: &str) -> Value {
    let (status, _, body) =
        send(s.client.get(format!("{}{ODS}/Organization/{code}", s.base))).await;
    assert_eq!(status, 200, "{body}");
    body["name"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_reference_data_is_what_the_provider_directory_and_ssp_answer_from() {
    let s = TestServer::start().await;
    let demo = demo_region();
    let gpc001 = demo
        .organisations
        .iter()
        .position(|o| o.ods == "GPC001")
        .unwrap();
    let id = demo.organisations[gpc001].id.clone();
    let read = |s: &TestServer| s.get(&format!("/Organization/{id}"), READ_ORG);

    assert_eq!(ods_name(&s, "GPC001").await, "GP Connect Demonstrator");
    let (status, _, before) = send(read(&s)).await;
    assert_eq!(
        (status, &before["name"]),
        (200, &Value::from("GP Connect Demonstrator"))
    );
    let registry = s.state.ssp.registry();
    assert!(registry.system(&Asid::parse(R1A14_ASID).unwrap()).is_some());

    let mut data = demo.clone();
    data.organisations[gpc001].name = "Renamed Practice".to_owned();
    // R1A14 leaves the Spine: its system is no longer registered.
    let r1a14 = data
        .organisations
        .iter_mut()
        .find(|o| o.ods == "R1A14")
        .unwrap();
    r1a14.asid = None;
    s.state.replace_reference(data);

    assert_eq!(ods_name(&s, "GPC001").await, "Renamed Practice");
    let (status, _, after) = send(read(&s)).await;
    assert_eq!(
        (status, &after["name"]),
        (200, &Value::from("Renamed Practice"))
    );
    assert!(
        s.state
            .ssp
            .registry()
            .system(&Asid::parse(R1A14_ASID).unwrap())
            .is_none()
    );
    // A request that took the registry before the swap keeps it whole.
    assert!(registry.system(&Asid::parse(R1A14_ASID).unwrap()).is_some());
    // The store still holds what was seeded: replacing the index writes nothing.
    let stored = s.state.store.reference_data().await.unwrap();
    assert_eq!(stored, demo);
}
