#![no_main]

use gpc_domain::interaction::Interaction;
use libfuzzer_sys::fuzz_target;

/// One cache for every input, as one server keeps one for every request.
static CLAIM_CACHE: gpc_domain::jwt::ClaimCache = gpc_domain::jwt::ClaimCache::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = jiff::Timestamp::now().as_second();
    // The header as sent, and the token alone behind a well-formed prefix.
    let _ = gpc_domain::jwt::decode(&CLAIM_CACHE, Some(text), now);
    let header = format!("Bearer {text}");
    if let Ok(claims) = gpc_domain::jwt::decode(&CLAIM_CACHE, Some(&header), now) {
        for interaction in Interaction::ALL {
            let _ = claims.check_for(interaction, "GPC001", None);
        }
    }
});
