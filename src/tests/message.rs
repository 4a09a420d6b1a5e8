//! The message parser.

use dm_remap_v4_target::message::{parse_message, Message, MessageError, HELP};

fn parse(line: &str) -> Result<Message, MessageError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    parse_message(words.iter().copied())
}

#[test]
fn help() {
    assert_eq!(parse("help"), Ok(Message::Help));
    assert!(HELP.starts_with("help:"));
    assert!(HELP.ends_with('\n'));
}

#[test]
fn list() {
    let all = Message::List {
        start_sector: 0,
        count: u64::MAX,
    };
    assert_eq!(parse("list"), Ok(all));
    assert_eq!(
        parse("list 4096"),
        Ok(Message::List {
            start_sector: 4096,
            count: u64::MAX
        })
    );
    assert_eq!(
        parse("list 8 2"),
        Ok(Message::List {
            start_sector: 8,
            count: 2
        })
    );
    assert_eq!(parse("list x"), Err(MessageError::BadNumber));
    assert_eq!(parse("list 1 -2"), Err(MessageError::BadNumber));
    assert_eq!(parse("list 1 2 3"), Err(MessageError::WrongArgumentCount));
}

#[test]
fn remap() {
    assert_eq!(parse("remap 4096"), Ok(Message::Remap { sector: 4096 }));
    assert_eq!(parse("remap"), Err(MessageError::WrongArgumentCount));
    assert_eq!(parse("remap 1 2"), Err(MessageError::WrongArgumentCount));
    assert_eq!(parse("remap x"), Err(MessageError::BadNumber));
}

#[test]
fn unremap_and_clear_pending() {
    assert_eq!(parse("unremap 8"), Ok(Message::Unremap { sector: 8 }));
    assert_eq!(
        parse("clear_pending 9"),
        Ok(Message::ClearPending { sector: 9 })
    );
    for word in ["unremap", "clear_pending"] {
        assert_eq!(parse(word), Err(MessageError::WrongArgumentCount));
        assert_eq!(
            parse(&format!("{word} 1 2")),
            Err(MessageError::WrongArgumentCount)
        );
        assert_eq!(parse(&format!("{word} 0x10")), Err(MessageError::BadNumber));
    }
}

#[test]
fn stats_and_clear_stats() {
    assert_eq!(parse("stats"), Ok(Message::Stats));
    assert_eq!(parse("clear_stats"), Ok(Message::ClearStats));
    assert_eq!(parse("spares"), Ok(Message::Spares));
    assert_eq!(parse("spares 0"), Err(MessageError::WrongArgumentCount));
    assert_eq!(parse("stats now"), Err(MessageError::WrongArgumentCount));
    assert_eq!(
        parse("clear_stats 1"),
        Err(MessageError::WrongArgumentCount)
    );
}

#[test]
fn help_names_every_message() {
    for word in [
        "help",
        "list",
        "remap",
        "unremap",
        "clear_pending",
        "stats",
        "clear_stats",
        "spares",
        "drain",
        "scrub",
    ] {
        assert!(
            HELP.lines().any(|l| l.starts_with(word)),
            "{word} missing from help"
        );
    }
}

#[test]
fn bad_messages() {
    assert_eq!(parse(""), Err(MessageError::Unknown));
    assert_eq!(parse("HELP"), Err(MessageError::Unknown));
    assert_eq!(parse("frobnicate 1"), Err(MessageError::Unknown));
    assert_eq!(parse("help me"), Err(MessageError::WrongArgumentCount));
    assert_ne!(
        MessageError::Unknown.message(),
        MessageError::WrongArgumentCount.message()
    );
}

#[test]
fn scrub() {
    assert_eq!(parse("scrub start"), Ok(Message::ScrubStart));
    assert_eq!(parse("scrub stop"), Ok(Message::ScrubStop));
    assert_eq!(parse("scrub status"), Ok(Message::ScrubStatus));
    assert_eq!(
        parse("scrub rate 65536"),
        Ok(Message::ScrubRate { kib: 65536 })
    );
    assert_eq!(parse("scrub rate 1"), Ok(Message::ScrubRate { kib: 1 }));
    assert_eq!(parse("scrub rate 0"), Err(MessageError::BadScrubRate));
    assert_eq!(parse("scrub rate 1048577"), Err(MessageError::BadScrubRate));
    assert_eq!(parse("scrub rate x"), Err(MessageError::BadNumber));
    assert_eq!(parse("scrub rate"), Err(MessageError::WrongArgumentCount));
    assert_eq!(parse("scrub"), Err(MessageError::WrongArgumentCount));
    assert_eq!(
        parse("scrub start now"),
        Err(MessageError::WrongArgumentCount)
    );
    assert_eq!(
        parse("scrub rate 5 6"),
        Err(MessageError::WrongArgumentCount)
    );
    assert_eq!(parse("scrub faster"), Err(MessageError::Unknown));
}

#[test]
fn drain() {
    assert_eq!(parse("drain 0"), Ok(Message::Drain { member: 0 }));
    assert_eq!(parse("drain 15"), Ok(Message::Drain { member: 15 }));
    assert_eq!(parse("drain 16"), Err(MessageError::BadMember));
    assert_eq!(parse("drain 4294967296"), Err(MessageError::BadNumber));
    assert_eq!(parse("drain /dev/sdb"), Err(MessageError::BadNumber));
    assert_eq!(parse("drain"), Err(MessageError::WrongArgumentCount));
    assert_eq!(parse("drain 1 2"), Err(MessageError::WrongArgumentCount));
    assert_ne!(
        MessageError::BadMember.message(),
        MessageError::BadNumber.message()
    );
}
