//! `dmsetup message <dev> 0 <message>`: the messages the target understands.

use core::ffi::CStr;

use super::arg::{is, Arg};

/// A parsed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// `help`: list the messages.
    Help,
}

/// Everything that can be wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// The first word is not a known message.
    Unknown,
    /// A known message with the wrong number of arguments.
    WrongArgumentCount,
}

impl MessageError {
    /// A static, specific, one-line explanation (logged, rate-limited, by the kernel).
    pub fn message(self) -> &'static CStr {
        match self {
            Self::Unknown => c"unknown message (send 'help' for the list)",
            Self::WrongArgumentCount => c"wrong number of arguments for this message (send 'help')",
        }
    }
}

/// The text `help` returns: one message per line, with its arguments.
pub const HELP: &str = "help: list the messages this target understands\n";

/// Parses a message's words (`argv` as the target receives it).
pub fn parse_message<A, I>(args: I) -> Result<Message, MessageError>
where
    A: Arg,
    I: IntoIterator<Item = A>,
    I::IntoIter: ExactSizeIterator,
{
    let mut args = args.into_iter();
    let word = args.next().ok_or(MessageError::Unknown)?;
    let rest = args.len();
    if is(word, "help") {
        return if rest == 0 {
            Ok(Message::Help)
        } else {
            Err(MessageError::WrongArgumentCount)
        };
    }
    Err(MessageError::Unknown)
}
