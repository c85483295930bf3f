//! Golden files: each `data/messages/NAME.xml` is parsed and the result compared with
//! `NAME.expected`. `UPDATE_GOLDEN=1 cargo test -p wxgate-proto --test golden` rewrites
//! the expectations; review the diff like code.

use std::path::Path;

use wxgate_proto::Message;

#[track_caller]
fn check_golden(input: &Path) {
    let xml = std::fs::read_to_string(input).unwrap();
    let actual = match Message::parse(&xml) {
        Ok(message) => format!(
            "to_user_name: {:?}\nfrom_user_name: {:?}\ncreate_time: {}\nmsg_type: {:?}\nmsg_id: {:?}\nevent: {:?}\nevent_key: {:?}\ndedup_key: {:?}\nkind: {:#?}\n",
            message.to_user_name,
            message.from_user_name,
            message.create_time,
            message.msg_type,
            message.msg_id,
            message.event(),
            message.event_key(),
            message.dedup_key(),
            message.kind
        ),
        Err(err) => format!("error: {err}\n"),
    };
    let expected_path = input.with_extension("expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with UPDATE_GOLDEN=1",
            expected_path.display()
        )
    });
    assert_eq!(actual, expected, "golden mismatch for {}", input.display());
}

#[test]
fn messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/messages");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 30,
        "every message and event type has a golden file"
    );
    for input in inputs {
        check_golden(&input);
    }
}
