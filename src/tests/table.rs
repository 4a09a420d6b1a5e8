//! The constructor's argument parser: every valid form and every way to get it wrong.

use dm_remap_v4_target::table::{parse_table, TableArgs, TableError, DEFAULT_RETRIES, MAX_RETRIES};

fn parse(line: &str) -> Result<TableArgs<&str>, TableError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    parse_table(words.iter().copied())
}

#[test]
fn main_and_spare() {
    assert_eq!(
        parse("/dev/loop0 /dev/loop1"),
        Ok(TableArgs {
            main: "/dev/loop0",
            spare: "/dev/loop1",
            retries: DEFAULT_RETRIES,
        })
    );
}

#[test]
fn empty_optional_block_is_allowed() {
    assert_eq!(
        parse("7:0 7:1 0").map(|t| (t.main, t.spare)),
        Ok(("7:0", "7:1"))
    );
}

#[test]
fn retries_option() {
    assert_eq!(parse("a b 2 retries 0").map(|t| t.retries), Ok(0));
    assert_eq!(parse("a b 2 retries 8").map(|t| t.retries), Ok(MAX_RETRIES));
    assert_eq!(parse("a b 0").map(|t| t.retries), Ok(DEFAULT_RETRIES));
}

#[test]
fn each_bad_form_has_its_own_error() {
    let cases = [
        ("", TableError::NoArguments),
        ("/dev/loop0", TableError::MissingSpare),
        ("/dev/loop0 /dev/loop1 x", TableError::BadOptionCount),
        ("/dev/loop0 /dev/loop1 -1", TableError::BadOptionCount),
        ("/dev/loop0 /dev/loop1 +1 a", TableError::BadOptionCount),
        (
            "/dev/loop0 /dev/loop1 99999999999 a",
            TableError::BadOptionCount,
        ),
        ("/dev/loop0 /dev/loop1 2 a", TableError::TooFewOptions),
        ("/dev/loop0 /dev/loop1 0 a", TableError::TooManyArguments),
        ("/dev/loop0 /dev/loop1 1 a b", TableError::TooManyArguments),
        (
            "/dev/loop0 /dev/loop1 1 frobnicate",
            TableError::UnknownOption,
        ),
        ("/dev/loop0 /dev/loop1 1 retries", TableError::BadRetries),
        ("/dev/loop0 /dev/loop1 2 retries x", TableError::BadRetries),
        ("/dev/loop0 /dev/loop1 2 retries 9", TableError::BadRetries),
        ("/dev/loop0 /dev/loop1 2 retries -1", TableError::BadRetries),
        (
            "/dev/loop0 /dev/loop1 4 retries 1 retries 2",
            TableError::DuplicateOption,
        ),
        (
            "/dev/loop0 /dev/loop1 3 retries 1 x",
            TableError::UnknownOption,
        ),
    ];
    for (line, want) in cases {
        assert_eq!(parse(line), Err(want), "table line {line:?}");
    }
}

#[test]
fn messages_are_distinct_and_nonempty() {
    let all = [
        TableError::NoArguments,
        TableError::MissingSpare,
        TableError::BadOptionCount,
        TableError::TooFewOptions,
        TableError::TooManyArguments,
        TableError::UnknownOption,
        TableError::BadRetries,
        TableError::DuplicateOption,
    ];
    for (i, a) in all.iter().enumerate() {
        assert!(!a.message().to_bytes().is_empty());
        for b in all.iter().skip(i + 1) {
            assert_ne!(a.message(), b.message(), "{a:?} and {b:?} share a message");
        }
    }
}
