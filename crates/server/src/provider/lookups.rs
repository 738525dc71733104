//! Reads and searches of Patient, Organization and Practitioner (spec §5).

use super::resources;
use super::response::FhirReply;
use super::search_params::IdentifierParam;
use crate::short;
use crate::state::AppState;
use gpc_domain::Region;
use gpc_domain::reference::{Organisation, Patient, PatientKey, PatientRecord};
use gpc_domain::systems::IdSystem;
use gpc_domain::{NhsNumber, ProviderError};

/// The NHS number a Patient search asks for, checked before the JWT's record is compared with it.
pub fn patient_search_nhs(param: &IdentifierParam) -> Result<NhsNumber, ProviderError> {
    if IdSystem::parse(&param.system) != Some(IdSystem::NhsNumber) {
        return Err(ProviderError::InvalidIdentifierSystem(format!(
            "a Patient search takes the system {}",
            gpc_domain::systems::NHS_NUMBER
        )));
    }
    NhsNumber::parse(&param.value).map_err(|e| ProviderError::InvalidNhsNumber(e.to_string()))
}

pub async fn search_patient(
    state: &AppState,
    region: &Region,
    tenant: &Organisation,
    nhs: &NhsNumber,
) -> Result<FhirReply, ProviderError> {
    let found = read_record(state, tenant, PatientKey::Nhs(nhs))
        .await?
        .filter(|(p, _)| p.deceased.is_none())
        .map(|(p, _)| resources::patient(&p, region));
    Ok(FhirReply::ok(resources::searchset(
        &state.provider_root(tenant.ods.as_str()),
        found.into_iter().collect(),
    )))
}

pub async fn read_patient(
    state: &AppState,
    region: &Region,
    tenant: &Organisation,
    id: &str,
) -> Result<FhirReply, ProviderError> {
    let (patient, _) = read_record(state, tenant, PatientKey::Id(id))
        .await?
        .ok_or_else(|| {
            ProviderError::PatientNotFound(format!(
                "no Patient with id {} on this system",
                short(id, 64)
            ))
        })?;
    Ok(FhirReply::ok(resources::patient(&patient, region)).with_etag(resources::REFERENCE_VERSION))
}

/// The tenant's record of a patient, from the store (patients are not held
/// in memory: `gpc_domain::region`).
async fn read_record(
    state: &AppState,
    tenant: &Organisation,
    key: PatientKey<'_>,
) -> Result<Option<(Patient, PatientRecord)>, ProviderError> {
    state
        .store
        .patient_record(&tenant.ods, key)
        .await
        .map_err(|e| match e {
            gpc_store::StoreError::Busy(_) => {
                ProviderError::Unavailable("the patient store is busy; try again shortly".into())
            }
            e => {
                tracing::error!(error = %e, "reading a patient record failed");
                ProviderError::Internal("the patient record could not be read".into())
            }
        })
}

pub fn search_organization(
    state: &AppState,
    region: &Region,
    tenant: &Organisation,
    param: &IdentifierParam,
) -> Result<FhirReply, ProviderError> {
    let found = match IdSystem::parse(&param.system) {
        Some(IdSystem::OdsOrganizationCode) => region.organisation_by_ods(&param.value),
        Some(IdSystem::OdsSiteCode) => region.organisation_by_site(&param.value),
        _ => {
            return Err(ProviderError::InvalidParameter(
                "an Organization search takes the system ods-organization-code or ods-site-code"
                    .into(),
            ));
        }
    };
    Ok(FhirReply::ok(resources::searchset(
        &state.provider_root(tenant.ods.as_str()),
        found.map(resources::organization).into_iter().collect(),
    )))
}

pub fn read_organization(region: &Region, id: &str) -> Result<FhirReply, ProviderError> {
    let org = region.organisation(id).ok_or_else(|| {
        ProviderError::OrganisationNotFound(format!(
            "no Organization with id {} on this system",
            short(id, 64)
        ))
    })?;
    Ok(FhirReply::ok(resources::organization(org)).with_etag(resources::REFERENCE_VERSION))
}

pub fn search_practitioner(
    state: &AppState,
    region: &Region,
    tenant: &Organisation,
    param: &IdentifierParam,
) -> Result<FhirReply, ProviderError> {
    if IdSystem::parse(&param.system) != Some(IdSystem::SdsUserId) {
        return Err(ProviderError::InvalidParameter(
            "a Practitioner search takes the system sds-user-id".into(),
        ));
    }
    let found = region
        .practitioners_by_sds(&param.value)
        .map(|p| resources::practitioner(p, region))
        .collect();
    Ok(FhirReply::ok(resources::searchset(
        &state.provider_root(tenant.ods.as_str()),
        found,
    )))
}

pub fn read_practitioner(region: &Region, id: &str) -> Result<FhirReply, ProviderError> {
    let p = region.practitioner(id).ok_or_else(|| {
        ProviderError::PractitionerNotFound(format!(
            "no Practitioner with id {} on this system",
            short(id, 64)
        ))
    })?;
    Ok(FhirReply::ok(resources::practitioner(p, region)).with_etag(resources::REFERENCE_VERSION))
}
