#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gpc_tasks_fuzz::order_body(data, gpc_fhir::Format::Json);
});
