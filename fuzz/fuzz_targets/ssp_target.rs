#![no_main]

use gpc_server::ssp::target;
use libfuzzer_sys::fuzz_target;

const ENDPOINTS: [&str; 3] = [
    "http://127.0.0.1:8080/GPC001/DSTU2/1",
    "https://provider.example.nhs.uk/R1A14/DSTU2/1",
    "http://localhost:80/R1A14/DSTU2/1/",
];

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for endpoint in ENDPOINTS {
        let Ok(forward) = target::check(raw, endpoint) else {
            continue;
        };
        // Whatever was accepted goes to the endpoint's origin, under its path.
        let registered = url::Url::parse(endpoint).unwrap();
        assert_eq!(forward.scheme(), registered.scheme(), "{raw}");
        assert_eq!(forward.host(), registered.host(), "{raw}");
        assert_eq!(
            forward.port_or_known_default(),
            registered.port_or_known_default(),
            "{raw}"
        );
        assert!(
            forward.username().is_empty() && forward.password().is_none(),
            "{raw}"
        );
        assert!(
            forward.query().is_none() && forward.fragment().is_none(),
            "{raw}"
        );
        let root = registered.path().trim_end_matches('/');
        let rest = forward
            .path()
            .strip_prefix(root)
            .unwrap_or_else(|| panic!("{raw} -> {forward}"));
        assert!(
            rest.is_empty() || rest.starts_with('/'),
            "{raw} -> {forward}"
        );
        assert!(
            !rest.split('/').any(|s| s == ".." || s == "."),
            "{raw} -> {forward}"
        );
    }
});
