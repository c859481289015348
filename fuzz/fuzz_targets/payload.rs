//! The payload builder (`herald_domain::payload`): every payload serializes to Panther's 13 keys
//! in order, reads back as the same payload, and serializes again to the same bytes (a re-send
//! and its signature use stored bytes, so they must be stable).
#![no_main]

use arbitrary::{Result, Unstructured};
use chrono::DateTime;
use herald_domain::payload::{PantherPayload, format_time};
use herald_domain::{AlertType, Severity, WireEnum};
use herald_fuzz::json_object;
use libfuzzer_sys::fuzz_target;

fn payload(u: &mut Unstructured) -> Result<Option<PantherPayload>> {
    // Years 0 to 9999: the only ones RFC 3339 (and so Panther's createdAt) can write.
    let secs = u.int_in_range(-62_167_219_200i64..=253_402_300_799)?;
    let Some(created_at) = DateTime::from_timestamp(secs, u.int_in_range(0..=999_999_999)?) else {
        return Ok(None);
    };
    Ok(Some(PantherPayload {
        id: u.arbitrary()?,
        created_at,
        severity: *u.choose(Severity::ALL)?,
        alert_type: *u.choose(AlertType::ALL)?,
        link: u.arbitrary()?,
        title: u.arbitrary()?,
        name: u.arbitrary()?,
        alert_id: u.arbitrary()?,
        alert_context: json_object(u, 4)?,
        description: u.arbitrary()?,
        runbook: u.arbitrary()?,
        tags: u.arbitrary()?,
        version: u.arbitrary()?,
    }))
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some(p)) = payload(&mut Unstructured::new(data)) else {
        return;
    };
    let bytes = p.to_bytes();
    let v: serde_json::Value = serde_json::from_str(&bytes).expect("the payload is JSON");
    let obj = v.as_object().expect("the payload is an object");
    assert_eq!(obj.len(), 13);
    assert_eq!(obj["createdAt"], format_time(&p.created_at).as_str());
    let back: PantherPayload = serde_json::from_str(&bytes).expect("the payload reads back");
    assert_eq!(back, p, "the payload does not round-trip: {bytes}");
    assert_eq!(back.to_bytes(), bytes, "serializing is not stable");
});
