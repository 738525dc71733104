#![no_main]

use gpc_server::provider::{negotiate, search_params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(param) = search_params::identifier(Some(query)) {
        assert!(!param.system.trim().is_empty() && !param.value.trim().is_empty());
    }
    let format = negotiate::format_param(Some(query));
    let _ = negotiate::response_format(format.as_deref(), Some(query), Some(query));
    let _ = negotiate::request_format(Some(query));
});
