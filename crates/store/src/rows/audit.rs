//! The provider's audit trail and the SSP's. Audit rows keep what a request
//! carried as text, valid or not: a refused request is audited with the
//! header values that made it fail.

use super::{Cell, RowReader, corrupt, to_ns};
use crate::StoreError;
use gpc_domain::audit::{AuditRecord, SspAuditRecord};

/// The audit columns, in the order of `audit_cells` and `decode_audit`.
macro_rules! audit_columns {
    () => {
        "time, tenant, trace_id, from_asid, to_asid, interaction, method, path, \
         practitioner_sds_id, organisation_ods, status, error_code, task_id"
    };
}
pub(crate) use audit_columns;

/// The SSP audit columns, in the order of `ssp_audit_cells` and `decode_ssp_audit`.
macro_rules! ssp_audit_columns {
    () => {
        "time, trace_id, from_asid, to_asid, interaction, method, target, status, duration_us, \
         refusal"
    };
}
pub(crate) use ssp_audit_columns;

pub(crate) fn audit_cells(a: &AuditRecord) -> Result<[Cell<'_>; 13], StoreError> {
    Ok([
        Cell::Int(to_ns(a.time)?),
        Cell::Text(&a.tenant),
        Cell::opt_text(a.trace_id.as_deref()),
        Cell::opt_text(a.from_asid.as_deref()),
        Cell::opt_text(a.to_asid.as_deref()),
        Cell::opt_text(a.interaction.as_deref()),
        Cell::Text(&a.method),
        Cell::Text(&a.path),
        Cell::opt_text(a.practitioner_sds_id.as_deref()),
        Cell::opt_text(a.organisation_ods.as_deref()),
        Cell::Int(i64::from(a.status)),
        Cell::opt_text(a.error_code.as_deref()),
        Cell::opt_text(a.task_id.as_deref()),
    ])
}

/// Reads the columns of `audit_columns!`, in its order.
pub(crate) fn decode_audit(row: &impl RowReader) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        time: row.timestamp(0)?,
        tenant: row.string(1)?,
        trace_id: row.opt_string(2)?,
        from_asid: row.opt_string(3)?,
        to_asid: row.opt_string(4)?,
        interaction: row.opt_string(5)?,
        method: row.string(6)?,
        path: row.string(7)?,
        practitioner_sds_id: row.opt_string(8)?,
        organisation_ods: row.opt_string(9)?,
        status: u16::try_from(row.int(10)?).map_err(|_| corrupt("audit status"))?,
        error_code: row.opt_string(11)?,
        task_id: row.opt_string(12)?,
    })
}

pub(crate) fn ssp_audit_cells(a: &SspAuditRecord) -> Result<[Cell<'_>; 10], StoreError> {
    Ok([
        Cell::Int(to_ns(a.time)?),
        Cell::opt_text(a.trace_id.as_deref()),
        Cell::opt_text(a.from_asid.as_deref()),
        Cell::opt_text(a.to_asid.as_deref()),
        Cell::opt_text(a.interaction.as_deref()),
        Cell::Text(&a.method),
        Cell::Text(&a.target),
        Cell::Int(i64::from(a.status)),
        Cell::Int(i64::try_from(a.duration_us).unwrap_or(i64::MAX)),
        Cell::opt_text(a.refusal.as_deref()),
    ])
}

/// Reads the columns of `ssp_audit_columns!`, in its order.
pub(crate) fn decode_ssp_audit(row: &impl RowReader) -> Result<SspAuditRecord, StoreError> {
    Ok(SspAuditRecord {
        time: row.timestamp(0)?,
        trace_id: row.opt_string(1)?,
        from_asid: row.opt_string(2)?,
        to_asid: row.opt_string(3)?,
        interaction: row.opt_string(4)?,
        method: row.string(5)?,
        target: row.string(6)?,
        status: u16::try_from(row.int(7)?).map_err(|_| corrupt("SSP audit status"))?,
        duration_us: u64::try_from(row.int(8)?).map_err(|_| corrupt("SSP audit duration"))?,
        refusal: row.opt_string(9)?,
    })
}
