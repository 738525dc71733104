//! How values read on screen: dates and times in UK time, names and NHS
//! numbers in the forms clinicians know, statuses as tags.

use gpc_domain::NhsNumber;
use gpc_domain::order_rules::london;
use gpc_domain::reference::{Address, Gender};
use gpc_domain::sent::SendStatus;
use jiff::Timestamp;
use jiff::civil::Date;

/// "25 Nov 2026, 14:05" in UK time.
pub fn when(t: Timestamp) -> String {
    t.to_zoned(london())
        .strftime("%-d %b %Y, %H:%M")
        .to_string()
}

/// "25 Nov 2026, 14:05:09" in UK time, where seconds matter (attempts).
pub fn when_exact(t: Timestamp) -> String {
    t.to_zoned(london())
        .strftime("%-d %b %Y, %H:%M:%S")
        .to_string()
}

/// The machine-readable form for `<time datetime>`.
pub fn iso(t: Timestamp) -> String {
    t.to_string()
}

/// "31-May-1952", the patient banner's date form.
pub fn born(d: Date) -> String {
    d.strftime("%d-%b-%Y").to_string()
}

/// "DAWES, Minnie (Mrs)", the patient banner's name form.
pub fn banner_name(title: &str, given: &str, family: &str) -> String {
    let mut name = family.to_uppercase();
    if !given.is_empty() {
        name.push_str(", ");
        name.push_str(given);
    }
    if !title.is_empty() {
        name.push_str(&format!(" ({title})"));
    }
    name
}

pub fn gender(g: Gender) -> &'static str {
    match g {
        Gender::Male => "Male",
        Gender::Female => "Female",
        Gender::Other => "Other",
        Gender::Unknown => "Unknown",
    }
}

pub fn address(a: &Address) -> String {
    let mut parts: Vec<&str> = a.lines.iter().map(String::as_str).collect();
    parts.push(&a.city);
    parts.push(&a.postcode);
    parts.retain(|p| !p.trim().is_empty());
    parts.join(", ")
}

/// "947 671 9931", the form people read.
pub fn nhs_number(nhs: &NhsNumber) -> String {
    nhs.formatted()
}

/// A status as a tag: its words and the tag's colour class.
pub struct StatusTag {
    pub label: &'static str,
    pub class: &'static str,
}

/// `retry_due` tells a Failed task waiting for its automatic retry from one
/// that rests until a person acts.
pub fn status_tag(status: SendStatus, retry_due: bool) -> StatusTag {
    let (label, colour) = match status {
        SendStatus::Queued | SendStatus::Sending => ("Sending", "blue"),
        SendStatus::Retrying => ("Retrying", "blue"),
        SendStatus::Delivered => ("Delivered", "green"),
        SendStatus::Rejected => ("Rejected", "red"),
        SendStatus::Failed if retry_due => ("Failed, retrying", "orange"),
        SendStatus::Failed => ("Failed", "red"),
        SendStatus::NoRoute => ("No electronic route", "grey"),
    };
    StatusTag {
        label,
        class: match colour {
            "blue" => "nhsuk-tag nhsuk-tag--blue",
            "green" => "nhsuk-tag nhsuk-tag--green",
            "red" => "nhsuk-tag nhsuk-tag--red",
            "orange" => "nhsuk-tag nhsuk-tag--orange",
            _ => "nhsuk-tag nhsuk-tag--grey",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_forms() {
        assert_eq!(banner_name("Mrs", "Minnie", "Dawes"), "DAWES, Minnie (Mrs)");
        assert_eq!(born("1952-05-31".parse().unwrap()), "31-May-1952");
        assert_eq!(
            nhs_number(&NhsNumber::parse("9476719931").unwrap()),
            "947 671 9931"
        );
    }

    #[test]
    fn times_are_shown_in_uk_time() {
        let summer: Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(when(summer), "1 Jul 2026, 13:00");
        let winter: Timestamp = "2026-11-25T09:05:07Z".parse().unwrap();
        assert_eq!(when_exact(winter), "25 Nov 2026, 09:05:07");
    }
}
