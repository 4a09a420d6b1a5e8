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
