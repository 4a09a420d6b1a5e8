//! Arbitrary bytes as a constructor line: `parse_table` must never panic, must accept only the forms the
//! table syntax allows, and must give every error a message.
#![no_main]

use dm_remap_v4_target::table::parse_table;
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;

use common::split_args;

/// True when `word` is a decimal number equal to `n` (leading zeros allowed, no sign).
fn is_decimal(word: &[u8], n: usize) -> bool {
    let digits = word
        .iter()
        .position(|&b| b != b'0')
        .map_or(&b"0"[..], |i| &word[i..]);
    !word.is_empty() && word.iter().all(u8::is_ascii_digit) && digits == n.to_string().as_bytes()
}

fuzz_target!(|data: &[u8]| {
    let words = split_args(data);
    match parse_table(words.iter().copied()) {
        Ok(args) => {
            assert_eq!(args.main, words[0]);
            assert!(
                words.len() == 2 || is_decimal(words[2], words.len() - 3),
                "accepted {words:?}"
            );
            // The options are the flag `format_foreign` or a known word and its value; every spare is a
            // positional one or follows the word `spare`, in order.
            let mut options = words.get(3..).unwrap_or(&[]);
            let mut spares = vec![words[1]];
            let mut flag = false;
            while let Some((&word, rest)) = options.split_first() {
                if word == b"format_foreign" {
                    assert!(!flag, "accepted {words:?}");
                    flag = true;
                    options = rest;
                    continue;
                }
                let (&value, rest) = rest.split_first().expect("an option without its value");
                match word {
                    b"retries" | b"main_id" | b"min_spare_percent" | b"scrub_rate"
                    | b"slow_threshold_ms" => {}
                    b"spare" => spares.push(value),
                    _ => panic!("accepted {words:?}"),
                }
                options = rest;
            }
            assert_eq!(args.format_foreign, flag);
            assert_eq!(args.spares().collect::<Vec<_>>(), spares);
            if let Some(id) = args.main_id {
                assert!((1..=64).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic));
            }
            assert!(args.retries <= 8);
            assert!(args.min_spare_percent <= 1000);
            assert!((1..=1 << 20).contains(&args.scrub_rate_kib));
            assert!((1..=60_000).contains(&args.slow_threshold_ms));
        }
        Err(e) => {
            assert!(words.len() != 2, "rejected two words: {e:?}");
            assert!(!e.message().is_empty());
        }
    }
});
