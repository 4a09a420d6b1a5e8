//! Arbitrary bytes as a `dmsetup message`: `parse_message` must never panic, must accept only the messages
//! it knows with their exact arguments, and must give every error a message.
#![no_main]

use dm_remap_v4_target::message::{parse_message, Message};
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;

use common::{decimal, split_args};

fuzz_target!(|data: &[u8]| {
    let words = split_args(data);
    match parse_message(words.iter().copied()) {
        Ok(Message::Help) => assert_eq!(words, [b"help"]),
        Ok(Message::Stats) => assert_eq!(words, [b"stats"]),
        Ok(Message::ClearStats) => assert_eq!(words, [b"clear_stats"]),
        Ok(Message::Spares) => assert_eq!(words, [b"spares"]),
        Ok(Message::List {
            start_sector,
            count,
        }) => {
            assert!(
                words[0] == b"list" && words.len() <= 3,
                "accepted {words:?}"
            );
            assert_eq!(words.get(1).map_or(Some(0), decimal), Some(start_sector));
            assert_eq!(words.get(2).map_or(Some(u64::MAX), decimal), Some(count));
        }
        Ok(Message::Remap { sector }) => {
            assert!(
                words[0] == b"remap" && words.len() == 2,
                "accepted {words:?}"
            );
            assert_eq!(decimal(&words[1]), Some(sector));
        }
        Ok(Message::Unremap { sector }) => {
            assert!(
                words[0] == b"unremap" && words.len() == 2,
                "accepted {words:?}"
            );
            assert_eq!(decimal(&words[1]), Some(sector));
        }
        Ok(Message::ClearPending { sector }) => {
            assert!(
                words[0] == b"clear_pending" && words.len() == 2,
                "accepted {words:?}"
            );
            assert_eq!(decimal(&words[1]), Some(sector));
        }
        Ok(Message::Drain { member }) => {
            assert!(
                words[0] == b"drain" && words.len() == 2,
                "accepted {words:?}"
            );
            assert_eq!(decimal(&words[1]), Some(u64::from(member)));
            assert!(member < 16);
        }
        Ok(Message::ScrubStart) => assert_eq!(words, [&b"scrub"[..], b"start"]),
        Ok(Message::ScrubStop) => assert_eq!(words, [&b"scrub"[..], b"stop"]),
        Ok(Message::ScrubStatus) => assert_eq!(words, [&b"scrub"[..], b"status"]),
        Ok(Message::ScrubRate { kib }) => {
            assert!(
                words.len() == 3 && words[0] == b"scrub" && words[1] == b"rate",
                "accepted {words:?}"
            );
            assert_eq!(decimal(&words[2]), Some(u64::from(kib)));
            assert!((1..=1 << 20).contains(&kib));
        }
        Err(e) => {
            assert_ne!(words, [b"help"], "rejected help: {e:?}");
            assert!(!e.message().is_empty());
        }
    }
});
