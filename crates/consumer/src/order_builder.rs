//! The Create Task request body of spec §4.1.

use gpc_domain::systems::{PROFILE_ORDER, PROFILE_TASK_BASIC, TASK_NARRATIVE, TASK_TYPE, URN};
use gpc_domain::task::TaskType;
use serde_json::{Value, json};

/// What the Order references on the receiving system, and what it says.
pub struct OrderParts<'a> {
    pub identifier: &'a str,
    pub date: &'a str,
    pub patient_id: &'a str,
    pub patient_display: &'a str,
    pub source_id: &'a str,
    pub source_display: &'a str,
    pub target_id: &'a str,
    pub target_display: &'a str,
    pub task_type: TaskType,
    pub text: &'a str,
}

/// Text typed by a person, as the content of an XHTML div: escaped, with line
/// breaks kept.
pub fn narrative_div(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    out.push_str("<div xmlns=\"http://www.w3.org/1999/xhtml\">");
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push_str("<br/>");
        }
        for c in line.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                // Control characters cannot be carried in XML; a person did not mean them.
                c if c.is_control() && c != '\t' => {}
                c => out.push(c),
            }
        }
    }
    out.push_str("</div>");
    out
}

pub fn order(parts: &OrderParts<'_>) -> Value {
    let basic_id = uuid::Uuid::new_v4().to_string();
    json!({
        "resourceType": "Order",
        "meta": {"profile": [PROFILE_ORDER]},
        "identifier": [{"system": URN, "value": parts.identifier}],
        "contained": [{
            "resourceType": "Basic",
            "id": basic_id,
            "meta": {"profile": [PROFILE_TASK_BASIC]},
            "text": {"status": "generated", "div": narrative_div(parts.text)},
            "code": {"coding": [{"system": TASK_NARRATIVE, "code": "Task Narrative"}]}
        }],
        "date": parts.date,
        "subject": {"reference": format!("Patient/{}", parts.patient_id), "display": parts.patient_display},
        "source": {"reference": format!("Organization/{}", parts.source_id), "display": parts.source_display},
        "target": {"reference": format!("Organization/{}", parts.target_id), "display": parts.target_display},
        "reasonCodeableConcept": {
            "coding": [{"system": TASK_TYPE, "code": parts.task_type.code(), "display": parts.task_type.display()}],
            "text": parts.task_type.display()
        },
        "detail": [{"reference": format!("#{basic_id}")}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_lines_kept() {
        assert_eq!(
            narrative_div("a < b & \"c\"\nnext<script>"),
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">a &lt; b &amp; &quot;c&quot;<br/>next&lt;script&gt;</div>"
        );
    }
}
