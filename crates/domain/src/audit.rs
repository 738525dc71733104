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
