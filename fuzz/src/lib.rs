//! What the fuzz targets share: the demo region and the checks an Order
//! body goes through on `POST /Order`, in the provider's order.

use gpc_domain::Region;
use gpc_domain::order_rules::{NamedRecords, london_today, subject_id, validate_order};
use gpc_domain::reference::{PatientKey, ReferenceData};
use gpc_fhir::Format;
use serde_json::Value;
use std::sync::LazyLock;

static DEMO: LazyLock<ReferenceData> = LazyLock::new(gpc_directory::demo_region);
static REGION: LazyLock<Region> = LazyLock::new(|| Region::new(DEMO.clone()));

/// `parse_body`, `validate_resource` and `validate_order` for GPC001; then,
/// for a body that parses, the same resource written in both formats must
/// read back as itself.
pub fn order_body(data: &[u8], format: Format) {
    let Ok(body) = gpc_fhir::parse_body(data, format) else {
        return;
    };
    let valid = gpc_fhir::validate_resource(&body).is_ok();
    if valid {
        // What the provider answers with must be readable in either format.
        let xml = gpc_fhir::xml::to_xml(&body);
        let back = gpc_fhir::xml::from_xml(&xml)
            .unwrap_or_else(|e| panic!("a valid resource does not read back from XML: {e}\n{xml}"));
        assert_eq!(
            without_div_padding(back),
            without_div_padding(body.clone()),
            "XML round trip changed the resource\n{xml}"
        );
        let json = gpc_fhir::to_body(&body, Format::Json);
        let again = gpc_fhir::parse_body(&json, Format::Json).expect("JSON reads back");
        assert_eq!(again, body);
    }
    let region = &*REGION;
    let tenant = region.tenant("GPC001").expect("GPC001 is a tenant");
    let today = london_today(jiff::Timestamp::now());
    // The subject's record, as the provider reads it from its store first.
    let named = NamedRecords {
        token_patient: None,
        subject: subject_id(&body).and_then(|id| DEMO.record_of(&tenant.ods, PatientKey::Id(id))),
    };
    let _ = validate_order(body, tenant, region, &named, today);
}

/// Whitespace around a narrative's `div` is not part of it: in XML it lies
/// between elements, where it carries nothing, so a round trip drops it.
fn without_div_padding(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match v {
                        Value::String(div) if key == "div" => {
                            *div = div.trim_matches([' ', '\t', '\r', '\n']).to_owned();
                        }
                        other => walk(other),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}
