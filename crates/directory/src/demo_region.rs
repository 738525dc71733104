//! The demo region of `shared/spec/demo-region.md`, value for value.
//!
//! Kept as tables in the order of the spec so that a reader can check them
//! line by line against it; ids are the 1-based position in those tables.
//! Addresses the spec leaves out (organisations, two patients) are invented
//! but plausible, and all telephone numbers are in the drama range.

use gpc_domain::reference::{
    Address, Gender, Organisation, OrganisationStatus, Party, Patient, PatientRecord, Practitioner,
    ReferenceData, RelationshipType, SharingAgreement,
};
use gpc_domain::{Asid, Interaction, NhsNumber, OdsCode};
use jiff::civil::Date;

struct OrgRow {
    ods: &'static str,
    name: &'static str,
    care_setting: &'static str,
    asid: Option<&'static str>,
    receives_tasks: bool,
    telephone: &'static str,
    sites: &'static [&'static str],
    address: (&'static [&'static str], &'static str, &'static str),
}

const ORGANISATIONS: &[OrgRow] = &[
    OrgRow {
        ods: "GPC001",
        name: "GP Connect Demonstrator",
        care_setting: "GP practice",
        asid: Some("200000000359"),
        receives_tasks: true,
        telephone: "01632 960001",
        sites: &["Z26556"],
        address: (&["12 Church Lane"], "Scunthorpe", "DN15 7AQ"),
    },
    OrgRow {
        ods: "R1A14",
        name: "Test GP Care Trust",
        care_setting: "GP practice",
        asid: Some("200000000361"),
        receives_tasks: true,
        telephone: "01632 960002",
        sites: &["Z33433", "Z33432"],
        address: (
            &["Ashby Health Centre", "40 Ashby High Street"],
            "Scunthorpe",
            "DN16 2RY",
        ),
    },
    OrgRow {
        ods: "R3B46",
        name: "New GP Practice",
        care_setting: "GP practice",
        asid: Some("200000000362"),
        receives_tasks: true,
        telephone: "01632 960003",
        sites: &[],
        address: (&["2 Chapel Street"], "Epworth", "DN9 1HQ"),
    },
    OrgRow {
        ods: "R1A17",
        name: "The Hockey Surgery",
        care_setting: "GP practice",
        asid: Some("200000000363"),
        receives_tasks: true,
        telephone: "01632 960004",
        sites: &["Z33437"],
        address: (&["18 Market Place"], "Kirton Lindsey", "DN21 4PB"),
    },
    OrgRow {
        ods: "Y00001",
        name: "North Lincolnshire Extended Access Hub",
        care_setting: "Extended access hub",
        asid: Some("200000000370"),
        receives_tasks: true,
        telephone: "01632 960010",
        sites: &[],
        address: (
            &["Brigg Primary Care Centre", "7 Wrawby Street"],
            "Brigg",
            "DN20 8JH",
        ),
    },
    OrgRow {
        ods: "X11101",
        name: "NHS 111 Humber",
        care_setting: "111",
        asid: Some("200000000371"),
        receives_tasks: false,
        telephone: "01632 960011",
        sites: &[],
        address: (
            &["Unit 4", "Normanby Enterprise Park"],
            "Scunthorpe",
            "DN15 9YH",
        ),
    },
    OrgRow {
        ods: "XAE001",
        name: "Scunthorpe General Hospital Emergency Department",
        care_setting: "A&E",
        asid: Some("200000000372"),
        receives_tasks: false,
        telephone: "01632 960012",
        sites: &[],
        address: (
            &["Emergency Department", "Infirmary Road"],
            "Scunthorpe",
            "DN15 7XA",
        ),
    },
    OrgRow {
        ods: "XPH001",
        name: "Brigg Community Physiotherapy",
        care_setting: "Physio",
        asid: Some("200000000373"),
        receives_tasks: true,
        telephone: "01632 960013",
        sites: &[],
        address: (&["3 Bigby Street"], "Brigg", "DN20 8EF"),
    },
    OrgRow {
        ods: "XAC001",
        name: "Scunthorpe General Hospital Medical Wards",
        care_setting: "Acute",
        asid: Some("200000000374"),
        receives_tasks: false,
        telephone: "01632 960014",
        sites: &[],
        address: (
            &["Medical Wards", "Infirmary Road"],
            "Scunthorpe",
            "DN15 7XA",
        ),
    },
    OrgRow {
        ods: "XSC001",
        name: "North Lincolnshire Adult Social Care",
        care_setting: "Social care",
        asid: Some("200000000375"),
        receives_tasks: false,
        telephone: "01632 960015",
        sites: &[],
        address: (&["Civic Offices", "Ashby Road"], "Scunthorpe", "DN16 1AB"),
    },
    OrgRow {
        ods: "XCM001",
        name: "North Lincolnshire Community Nursing",
        care_setting: "Community",
        asid: Some("200000000376"),
        receives_tasks: true,
        telephone: "01632 960016",
        sites: &[],
        address: (
            &["Community Nursing Base", "15 West Street"],
            "Scunthorpe",
            "DN15 6HX",
        ),
    },
    OrgRow {
        ods: "XOA001",
        name: "Out of Area Medical Centre",
        care_setting: "GP practice (another area)",
        asid: Some("200000000380"),
        receives_tasks: true,
        telephone: "01632 960020",
        sites: &[],
        // "Another area": just over the border, in West Lindsey.
        address: (&["27 Trinity Street"], "Gainsborough", "DN21 2AL"),
    },
    OrgRow {
        ods: "Y12345",
        name: "Somerset Bridge Medical Centre",
        care_setting: "GP practice",
        asid: None,
        receives_tasks: false,
        telephone: "01632 960030",
        sites: &[],
        address: (&["4 Bridge Street"], "Brigg", "DN20 8NB"),
    },
];

struct PatientRow {
    nhs: &'static str,
    title: &'static str,
    given: &'static str,
    family: &'static str,
    born: &'static str,
    gender: Gender,
    practice: &'static str,
    status: &'static str,
    address: (&'static [&'static str], &'static str, &'static str),
    sensitive: bool,
    deceased: Option<&'static str>,
}

/// What most rows share; each row overrides the rest.
const PATIENT: PatientRow = PatientRow {
    nhs: "",
    title: "",
    given: "",
    family: "",
    born: "",
    gender: Gender::Unknown,
    practice: "",
    status: "01",
    address: (&[], "", ""),
    sensitive: false,
    deceased: None,
};

const PATIENTS: &[PatientRow] = &[
    PatientRow {
        nhs: "9476719915",
        title: "Ms",
        given: "Sophie",
        family: "MCVEY",
        born: "1952-06-13",
        gender: Gender::Female,
        practice: "GPC001",
        address: (&["10 St Catherines Crescent"], "Scunthorpe", "DN16 3LQ"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476719931",
        title: "Mrs",
        given: "Minnie",
        family: "DAWES",
        born: "1952-05-31",
        gender: Gender::Female,
        practice: "GPC001",
        address: (&["24 Grammar School Road"], "Brigg", "DN20 8AF"),
        ..PATIENT
    },
    // The spec gives no town; DN17's post town is Scunthorpe.
    PatientRow {
        nhs: "9476719974",
        title: "Mr",
        given: "Julian",
        family: "PHELAN",
        born: "1992-07-02",
        gender: Gender::Male,
        practice: "GPC001",
        address: (&["Farm House", "Bonnyhale Road"], "Scunthorpe", "DN17 4JQ"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476719958",
        title: "Mrs",
        given: "Dolly",
        family: "BANTON",
        born: "1955-09-18",
        gender: Gender::Female,
        practice: "GPC001",
        address: (&["11 Queensway"], "Scunthorpe", "DN16 2BZ"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718897",
        title: "Mr",
        given: "Carl",
        family: "CASSIN",
        born: "1951-04-16",
        gender: Gender::Male,
        practice: "GPC001",
        address: (&["Longcroft", "Walcot Road"], "Alkborough", "DN15 9JS"),
        sensitive: true,
        ..PATIENT
    },
    // The spec gives no address for JOHNSON; this one is invented.
    PatientRow {
        nhs: "9000000173",
        title: "Mrs",
        given: "Claire",
        family: "JOHNSON",
        born: "1979-11-12",
        gender: Gender::Female,
        practice: "GPC001",
        address: (&["6 Parkinson Avenue"], "Scunthorpe", "DN15 7JX"),
        deceased: Some("2016-07-13"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476719966",
        title: "Miss",
        given: "Ruby",
        family: "MACKIN",
        born: "1953-01-01",
        gender: Gender::Female,
        practice: "R1A14",
        address: (&["3 Wilderspin Heights"], "Barton-upon-Humber", "DN18 5SN"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476719923",
        title: "Ms",
        given: "Sybill",
        family: "PROUT",
        born: "1953-11-02",
        gender: Gender::Female,
        practice: "R1A14",
        address: (&["30 Halton Close"], "Kirton Lindsey", "DN21 4PX"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718870",
        title: "Mr",
        given: "Dean",
        family: "BALL",
        born: "1935-08-20",
        gender: Gender::Male,
        practice: "R1A14",
        address: (&["28 Tensing Road"], "Scunthorpe", "DN16 3DS"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718889",
        title: "Mr",
        given: "Daren",
        family: "ROLF",
        born: "1929-01-10",
        gender: Gender::Male,
        practice: "R1A17",
        address: (&["Lynton"], "East Halton", "DN40 3NN"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718919",
        title: "Mr",
        given: "Donald",
        family: "GROVES",
        born: "1917-03-17",
        gender: Gender::Male,
        practice: "R1A17",
        address: (&["41 The Meadows"], "Messingham", "DN17 3UD"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718927",
        title: "Mr",
        given: "Mervyn",
        family: "EAVE",
        born: "1932-06-27",
        gender: Gender::Male,
        practice: "R1A17",
        address: (&["11 Wesley Street"], "Kirton Lindsey", "DN21 4PE"),
        status: "02",
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718951",
        title: "Mr",
        given: "Greg",
        family: "HOPLEY",
        born: "1929-03-15",
        gender: Gender::Male,
        practice: "R1A17",
        address: (&["103 Enderby Road"], "Scunthorpe", "DN17 2JL"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718935",
        title: "Mr",
        given: "Jeremy",
        family: "SHAIN",
        born: "1928-02-06",
        gender: Gender::Male,
        practice: "R3B46",
        address: (&["24 High Street"], "Haxey", "DN9 2HH"),
        ..PATIENT
    },
    PatientRow {
        nhs: "9476718900",
        title: "Mr",
        given: "Evan",
        family: "TOWERS",
        born: "1934-09-18",
        gender: Gender::Male,
        practice: "XOA001",
        address: (&["2 Front Street"], "Brigg", "DN20 0RD"),
        ..PATIENT
    },
    // The spec gives no address for SMITH; this one is invented, near her practice.
    PatientRow {
        nhs: "9000000009",
        title: "Mrs",
        given: "Jane",
        family: "SMITH",
        born: "1961-07-02",
        gender: Gender::Female,
        practice: "Y12345",
        address: (&["9 Cadney Road"], "Brigg", "DN20 9HR"),
        ..PATIENT
    },
];

/// GPC001 still holds HOPLEY's record after he left on this date.
const HOPLEY_LEFT_GPC001: &str = "2024-03-31";

/// The practices federated by the extended access hub `Y00001`.
const HUB: &str = "Y00001";
const HUB_PRACTICES: &[&str] = &["GPC001", "R1A14", "R1A17"];

/// Systems that hold a record because of a current referral.
const REFERRAL_HOLDERS: &[&str] = &["XPH001", "XCM001"];
const REFERRED_PATIENTS: &[&str] = &["DAWES", "MACKIN", "ROLF"];

/// (SDS user id, title, given, family, organisation, role code, role display)
type PractitionerRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const GMP: (&str, &str) = ("R0260", "General Medical Practitioner");

const PRACTITIONERS: &[PractitionerRow] = &[
    (
        "G13579135",
        "Dr",
        "Nichole",
        "GILBERT",
        "GPC001",
        GMP.0,
        GMP.1,
    ),
    ("G22345655", "Dr", "Kibo", "SLATER", "R1A14", GMP.0, GMP.1),
    (
        "G11111116",
        "Mrs",
        "Melissa",
        "PARSONS",
        "Y00001",
        GMP.0,
        GMP.1,
    ),
    (
        "G22222226",
        "Mrs",
        "Melissa",
        "PARSONS",
        "R1A17",
        GMP.0,
        GMP.1,
    ),
    (
        "G30000001",
        "Mr",
        "Sam",
        "CARTER",
        "X11101",
        "R0570",
        "Nurse",
    ),
    (
        "G30000002",
        "Dr",
        "Priya",
        "NAIR",
        "XAE001",
        "R0050",
        "Consultant",
    ),
    (
        "G30000003",
        "Mr",
        "Tom",
        "WHEELER",
        "XPH001",
        "R1290",
        "Physiotherapist",
    ),
    (
        "G30000004",
        "Dr",
        "Aisha",
        "BELL",
        "XAC001",
        "R0050",
        "Consultant",
    ),
    (
        "G30000005",
        "Ms",
        "Lucy",
        "HART",
        "XSC001",
        "R9050",
        "Social Worker",
    ),
    (
        "G30000006",
        "Mrs",
        "Jo",
        "PEARCE",
        "XCM001",
        "R0570",
        "Nurse",
    ),
    ("G30000007", "Dr", "Alan", "FROST", "XOA001", GMP.0, GMP.1),
    ("G40000001", "Dr", "Ben", "OKAFOR", "R3B46", GMP.0, GMP.1),
    // The second role profile of G22222226 on the R1A17 system.
    (
        "G22222226",
        "Mrs",
        "Melissa",
        "PARSONS",
        "R1A17",
        GMP.0,
        GMP.1,
    ),
    // The second users of GPC001 and Y00001 (task-lifecycle.md): a received
    // task can go to a colleague, and two people can reach for one task.
    // Last, so that every earlier id stays as it was.
    (
        "G50000001",
        "Mrs",
        "Helen",
        "ROSS",
        "GPC001",
        "R0570",
        "Nurse",
    ),
    ("G50000002", "Dr", "Omar", "SAYED", "Y00001", GMP.0, GMP.1),
];

/// The reference data every new data directory starts with.
pub fn demo_region() -> ReferenceData {
    let organisations: Vec<Organisation> = ORGANISATIONS
        .iter()
        .enumerate()
        .map(|(i, o)| Organisation {
            id: (i + 1).to_string(),
            ods: ods(o.ods),
            name: o.name.to_owned(),
            care_setting: o.care_setting.to_owned(),
            asid: o.asid.map(|a| demo(Asid::parse(a), "demo ASID is digits")),
            receives_tasks: o.receives_tasks,
            telephone: o.telephone.to_owned(),
            site_codes: o.sites.iter().map(|s| (*s).to_owned()).collect(),
            address: Some(address(o.address)),
            status: OrganisationStatus::Active,
            interactions: None,
        })
        .collect();

    let patients: Vec<Patient> = PATIENTS
        .iter()
        .enumerate()
        .map(|(i, p)| Patient {
            id: (i + 1).to_string(),
            nhs_number: demo(
                NhsNumber::parse(p.nhs).ok(),
                "demo NHS number passes Modulus 11",
            ),
            title: p.title.to_owned(),
            given: p.given.to_owned(),
            family: p.family.to_owned(),
            birth_date: date(p.born),
            gender: p.gender,
            address: address(p.address),
            // A restricted record has no telephone to show, so none is held.
            telephone: (!p.sensitive).then(|| format!("01632 960{}", 101 + i)),
            registered_practice: ods(p.practice),
            verification_status: p.status.to_owned(),
            sensitive: p.sensitive,
            deceased: p.deceased.map(date),
        })
        .collect();

    let records = patient_records(&organisations, &patients);

    let practitioners = PRACTITIONERS
        .iter()
        .enumerate()
        .map(
            |(i, &(sds, title, given, family, org, role_code, role_display))| Practitioner {
                id: (i + 1).to_string(),
                sds_user_id: sds.to_owned(),
                title: title.to_owned(),
                given: given.to_owned(),
                family: family.to_owned(),
                organisation: ods(org),
                role_code: role_code.to_owned(),
                role_display: role_display.to_owned(),
            },
        )
        .collect();

    let agreements = sharing_agreements(&organisations);
    ReferenceData {
        organisations,
        patients,
        records,
        practitioners,
        agreements,
    }
}

/// The demo-region rule: every organisation except XOA001 and Y12345 may send
/// a task to every organisation except those two that receives tasks. The
/// rule's own words include an organisation sending to itself, so those pairs
/// are kept.
fn sharing_agreements(organisations: &[Organisation]) -> Vec<SharingAgreement> {
    const OUTSIDE: [&str; 2] = ["XOA001", "Y12345"];
    let inside = |o: &&Organisation| !OUTSIDE.contains(&o.ods.as_str());
    let mut agreements = Vec::new();
    for sender in organisations.iter().filter(inside) {
        for receiver in organisations
            .iter()
            .filter(inside)
            .filter(|o| o.receives_tasks)
        {
            agreements.push(SharingAgreement {
                sender: Party::Org(sender.ods.clone()),
                receiver: Party::Org(receiver.ods.clone()),
                interaction: Interaction::CreateTask.id().to_owned(),
            });
        }
    }
    agreements
}

/// Grouped by holder in organisation order, so a holder's records read together.
fn patient_records(organisations: &[Organisation], patients: &[Patient]) -> Vec<PatientRecord> {
    let record = |holder: &OdsCode, p: &Patient, relationship, ended| PatientRecord {
        holder: holder.clone(),
        patient_id: p.id.clone(),
        relationship,
        ended,
    };
    let mut records = Vec::new();
    for org in organisations {
        let holder = &org.ods;
        let code = holder.as_str();
        for p in patients.iter().filter(|p| &p.registered_practice == holder) {
            records.push(record(holder, p, RelationshipType::Registered, None));
        }
        if code == "GPC001" {
            let hopley = patients.iter().find(|p| p.family == "HOPLEY");
            let hopley = demo(hopley, "HOPLEY is in the demo region");
            let left = Some(date(HOPLEY_LEFT_GPC001));
            records.push(record(holder, hopley, RelationshipType::Registered, left));
        }
        if code == HUB {
            for p in patients
                .iter()
                .filter(|p| HUB_PRACTICES.contains(&p.registered_practice.as_str()))
            {
                records.push(record(holder, p, RelationshipType::ExtendedAccess, None));
            }
        }
        if REFERRAL_HOLDERS.contains(&code) {
            for p in patients
                .iter()
                .filter(|p| REFERRED_PATIENTS.contains(&p.family.as_str()))
            {
                records.push(record(holder, p, RelationshipType::Referral, None));
            }
        }
    }
    records
}

fn ods(code: &str) -> OdsCode {
    demo(OdsCode::parse(code), "demo ODS code is well formed")
}

fn date(iso: &str) -> Date {
    demo(iso.parse().ok(), "demo date is ISO 8601")
}

/// A value parsed or found in the constant tables above. They cannot fail
/// but by a typo in them, which the unit tests below (building the region)
/// find; so a failure panics.
#[allow(clippy::expect_used)]
#[track_caller]
fn demo<T>(parsed: Option<T>, what: &str) -> T {
    parsed.expect(what)
}

fn address((lines, city, postcode): (&[&str], &str, &str)) -> Address {
    Address {
        lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        city: city.to_owned(),
        postcode: postcode.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn patient_id(data: &ReferenceData, family: &str) -> String {
        data.patients
            .iter()
            .find(|p| p.family == family)
            .map(|p| p.id.clone())
            .unwrap()
    }

    fn held_by<'a>(data: &'a ReferenceData, holder: &str) -> Vec<&'a PatientRecord> {
        data.records
            .iter()
            .filter(|r| r.holder.as_str() == holder)
            .collect()
    }

    #[test]
    fn counts_match_the_spec() {
        let data = demo_region();
        assert_eq!(data.organisations.len(), 13);
        assert_eq!(data.patients.len(), 16);
        assert_eq!(data.practitioners.len(), 15);
        // 16 registrations + HOPLEY's ended one + 13 at the hub + 2 x 3 referrals.
        assert_eq!(data.records.len(), 36);
        let ids: Vec<String> = (1..=13).map(|i| i.to_string()).collect();
        let org_ids: Vec<String> = data.organisations.iter().map(|o| o.id.clone()).collect();
        assert_eq!(org_ids, ids);
    }

    #[test]
    fn every_nhs_number_passes_modulus_11() {
        for p in &demo_region().patients {
            let digits = p.nhs_number.as_digits();
            assert!(NhsNumber::parse(&digits).is_ok(), "patient {}", p.id);
        }
    }

    #[test]
    fn organisation_values() {
        let data = demo_region();
        let y12345 = &data.organisations[12];
        assert_eq!(y12345.ods.as_str(), "Y12345");
        assert_eq!(y12345.asid, None);
        assert!(!y12345.receives_tasks);
        let gpc = &data.organisations[0];
        assert_eq!(gpc.asid.as_ref().unwrap().as_str(), "200000000359");
        assert_eq!(gpc.site_codes, ["Z26556"]);
        assert_eq!(data.organisations[1].site_codes, ["Z33433", "Z33432"]);
        assert_eq!(data.organisations[3].site_codes, ["Z33437"]);
        let receivers: Vec<&str> = data
            .organisations
            .iter()
            .filter(|o| o.receives_tasks)
            .map(|o| o.ods.as_str())
            .collect();
        assert_eq!(
            receivers,
            [
                "GPC001", "R1A14", "R3B46", "R1A17", "Y00001", "XPH001", "XCM001", "XOA001"
            ]
        );
        for o in &data.organisations {
            assert!(o.telephone.starts_with("01632 960"), "{}", o.ods);
            assert!(o.address.is_some(), "{}", o.ods);
        }
    }

    #[test]
    fn patient_values() {
        let data = demo_region();
        let cassin = &data.patients[4];
        assert_eq!(cassin.family, "CASSIN");
        assert!(cassin.sensitive);
        assert_eq!(cassin.telephone, None);
        let johnson = &data.patients[5];
        assert_eq!(johnson.deceased, Some(date("2016-07-13")));
        let eave = data.patients.iter().find(|p| p.family == "EAVE").unwrap();
        assert_eq!(eave.verification_status, "02");
        let others = data.patients.iter().filter(|p| p.family != "EAVE");
        assert!(others.into_iter().all(|p| p.verification_status == "01"));
        assert_eq!(data.patients.iter().filter(|p| p.sensitive).count(), 1);
        assert_eq!(
            data.patients
                .iter()
                .filter(|p| p.deceased.is_some())
                .count(),
            1
        );
        let dawes = &data.patients[1];
        assert_eq!(dawes.display_name(), "Mrs Minnie DAWES");
        assert_eq!(dawes.birth_date, date("1952-05-31"));
        assert_eq!(dawes.address.lines, ["24 Grammar School Road"]);
        assert_eq!(dawes.address.city, "Brigg");
        assert_eq!(dawes.address.postcode, "DN20 8AF");
        for p in data.patients.iter().filter(|p| !p.sensitive) {
            let tel = p.telephone.as_deref().unwrap();
            let n: u32 = tel.strip_prefix("01632 960").unwrap().parse().unwrap();
            assert!((100..=199).contains(&n), "{tel}");
        }
    }

    #[test]
    fn hopley_left_gpc001_but_his_record_stays() {
        let data = demo_region();
        let hopley = patient_id(&data, "HOPLEY");
        let at_gpc: Vec<_> = held_by(&data, "GPC001")
            .into_iter()
            .filter(|r| r.patient_id == hopley)
            .collect();
        assert_eq!(at_gpc.len(), 1);
        assert_eq!(at_gpc[0].relationship, RelationshipType::Registered);
        assert_eq!(at_gpc[0].ended, Some(date("2024-03-31")));
        let ended: Vec<_> = data.records.iter().filter(|r| r.ended.is_some()).collect();
        assert_eq!(ended.len(), 1);
        let current = held_by(&data, "R1A17")
            .into_iter()
            .find(|r| r.patient_id == hopley)
            .unwrap();
        assert_eq!(current.ended, None);
    }

    #[test]
    fn hub_holds_exactly_the_patients_of_its_three_practices() {
        let data = demo_region();
        // The families registered at GPC001, R1A14 and R1A17 in the spec's table.
        let expected: BTreeSet<String> = [
            "MCVEY", "DAWES", "PHELAN", "BANTON", "CASSIN", "JOHNSON", "MACKIN", "PROUT", "BALL",
            "ROLF", "GROVES", "EAVE", "HOPLEY",
        ]
        .iter()
        .map(|f| patient_id(&data, f))
        .collect();
        let hub = held_by(&data, "Y00001");
        assert_eq!(hub.len(), 13);
        let held: BTreeSet<String> = hub.iter().map(|r| r.patient_id.clone()).collect();
        assert_eq!(held, expected);
        assert!(
            hub.iter()
                .all(|r| r.relationship == RelationshipType::ExtendedAccess)
        );
        assert!(hub.iter().all(|r| r.ended.is_none()));
    }

    #[test]
    fn other_holders() {
        let data = demo_region();
        let families = |holder: &str| -> Vec<String> {
            held_by(&data, holder)
                .iter()
                .map(|r| {
                    let p = data.patients.iter().find(|p| p.id == r.patient_id).unwrap();
                    format!("{} {}", p.family, r.relationship.as_str())
                })
                .collect()
        };
        for holder in ["XPH001", "XCM001"] {
            assert_eq!(
                families(holder),
                ["DAWES referral", "MACKIN referral", "ROLF referral"]
            );
        }
        assert_eq!(families("XOA001"), ["TOWERS registered"]);
        assert_eq!(families("R3B46"), ["SHAIN registered"]);
        assert_eq!(families("Y12345"), ["SMITH registered"]);
        assert_eq!(families("GPC001").len(), 7);
        for holder in ["X11101", "XAE001", "XAC001", "XSC001"] {
            assert!(families(holder).is_empty(), "{holder}");
        }
        // Each patient has exactly one current registration, at their practice.
        for p in &data.patients {
            let regs: Vec<_> = data
                .records
                .iter()
                .filter(|r| r.patient_id == p.id)
                .filter(|r| r.relationship == RelationshipType::Registered && r.ended.is_none())
                .collect();
            assert_eq!(regs.len(), 1, "patient {}", p.id);
            assert_eq!(regs[0].holder, p.registered_practice);
        }
    }

    #[test]
    fn g22222226_has_two_records_on_r1a17() {
        let data = demo_region();
        let records: Vec<&Practitioner> = data
            .practitioners
            .iter()
            .filter(|p| p.sds_user_id == "G22222226")
            .collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].id, "4");
        assert_eq!(records[1].id, "13");
        for r in &records {
            assert_eq!(r.organisation.as_str(), "R1A17");
            assert_eq!(r.display_name(), "Mrs Melissa PARSONS");
            assert_eq!(r.role_code, "R0260");
            assert_eq!(r.role_display, "General Medical Practitioner");
        }
        assert!(
            !data
                .practitioners
                .iter()
                .any(|p| p.sds_user_id == "G99999999")
        );
    }

    #[test]
    fn practitioner_roles() {
        let data = demo_region();
        let roles: Vec<(&str, &str)> = data
            .practitioners
            .iter()
            .map(|p| (p.sds_user_id.as_str(), p.role_code.as_str()))
            .collect();
        assert_eq!(roles[4], ("G30000001", "R0570"));
        assert_eq!(roles[6], ("G30000003", "R1290"));
        assert_eq!(roles[8], ("G30000005", "R9050"));
        assert_eq!(data.practitioners[8].role_display, "Social Worker");
        assert_eq!(data.practitioners[11].organisation.as_str(), "R3B46");
    }

    #[test]
    fn sharing_agreements_follow_the_demo_rule() {
        let data = demo_region();
        let create = Interaction::CreateTask.id();
        let agreed = |from: &str, to: &str| {
            data.agreements.iter().any(|a| {
                a.sender.as_str() == from && a.receiver.as_str() == to && a.interaction == create
            })
        };
        // 11 senders (ASID, not XOA001) x 7 receivers (not XOA001).
        assert_eq!(data.agreements.len(), 77);
        assert!(agreed("Y00001", "GPC001"));
        assert!(agreed("X11101", "R1A17"));
        assert!(agreed("GPC001", "XCM001"));
        assert!(!agreed("XOA001", "GPC001"));
        assert!(!agreed("GPC001", "XOA001"));
        assert!(!agreed("Y12345", "GPC001"));
        assert!(!agreed("GPC001", "X11101"), "111 receives no tasks");
    }
}
