//! How values read on screen: dates and times in UK time, names and NHS
//! numbers in the forms clinicians know, statuses as tags.

use gpc_domain::NhsNumber;
use gpc_domain::lifecycle::TimelineEntry;
use gpc_domain::order_rules::london;
use gpc_domain::reference::{Address, Gender};
use gpc_domain::sent::{SendStatus, SentTask};
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

/// One change of a task as both sides' timelines show it (`timeline.html`).
pub struct TimelineRow {
    pub version: u32,
    pub when: String,
    pub iso: String,
    pub state: &'static str,
    pub by: String,
    pub role: String,
    pub organisation: String,
    pub owner: String,
    pub note: String,
}

pub fn timeline_row(e: &TimelineEntry) -> TimelineRow {
    TimelineRow {
        version: e.version,
        when: when_exact(e.at),
        iso: iso(e.at),
        state: e.state.display(),
        by: e.by.name.clone(),
        role: e.by.role_display.clone(),
        organisation: e.by.organisation.to_string(),
        owner: e.owner.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        note: e.note.clone().unwrap_or_default(),
    }
}

/// At most `max` characters of `text`, with "…" when cut.
pub fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_owned(),
    }
}

/// A status as a tag: its words and the tag's colour class.
pub struct StatusTag {
    pub label: String,
    pub class: &'static str,
}

/// A sent task's tag in the sent list and on its page: the delivery status
/// until it is delivered, then what became of it at the recipient
/// (task-lifecycle.md §4: Delivered → Accepted by … → Completed /
/// Rejected: reason / Cancelled), or the cancellation on its way.
pub fn sent_tag(task: &SentTask, last_note: Option<&str>) -> StatusTag {
    use gpc_domain::lifecycle::TaskState;
    use gpc_domain::updates::UpdateStatus;
    let delivered = task.status == SendStatus::Delivered;
    let remote = task.remote.as_ref().filter(|_| delivered);
    if remote.is_none() {
        return status_tag(task.status, task.next_attempt_at.is_some());
    }
    let colour = match (
        task.cancellation.as_ref().map(|c| c.status),
        remote.map(|r| r.state),
    ) {
        (Some(UpdateStatus::Pending), _) => "nhsuk-tag nhsuk-tag--blue",
        (Some(UpdateStatus::Delivered), _) | (_, Some(TaskState::Cancelled)) => {
            "nhsuk-tag nhsuk-tag--grey"
        }
        (_, Some(TaskState::Accepted)) => "nhsuk-tag nhsuk-tag--blue",
        (_, Some(TaskState::Rejected)) => "nhsuk-tag nhsuk-tag--red",
        _ => "nhsuk-tag nhsuk-tag--green",
    };
    StatusTag {
        label: task.state_label(last_note),
        class: colour,
    }
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
        label: label.to_owned(),
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
