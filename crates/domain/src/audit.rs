//! Audit records of provider requests, accepted or refused.

use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRecord {
    pub time: Timestamp,
    /// The provider's ODS code (tenant) the request was addressed to; empty when none matched.
    pub tenant: String,
    pub trace_id: Option<String>,
    pub from_asid: Option<String>,
    pub to_asid: Option<String>,
    pub interaction: Option<String>,
    pub method: String,
    /// Path under the server, without the query (queries can hold NHS numbers).
    pub path: String,
    /// From the JWT, only when the token was valid.
    pub practitioner_sds_id: Option<String>,
    pub organisation_ods: Option<String>,
    pub status: u16,
    /// GP Connect error code when refused.
    pub error_code: Option<String>,
    pub task_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub since: Option<Timestamp>,
    pub limit: usize,
}

/// One request through the Spine Security Proxy, forwarded or refused.
/// Header values are kept as sent (shortened), so that refusals of malformed
/// ones can still be traced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SspAuditRecord {
    pub time: Timestamp,
    pub trace_id: Option<String>,
    pub from_asid: Option<String>,
    pub to_asid: Option<String>,
    pub interaction: Option<String>,
    pub method: String,
    /// The absolute target URL without its query (queries can hold NHS numbers).
    pub target: String,
    /// The status the consumer received: the provider's, or the SSP's own on a refusal.
    pub status: u16,
    /// From receipt to the provider's response headers (or the refusal).
    pub duration_us: u64,
    /// The SSP's error code when it answered itself (e.g. `FOT_CHECK_FAILED`).
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SspAuditFilter {
    pub since: Option<Timestamp>,
    /// 0 = no limit.
    pub limit: usize,
}
