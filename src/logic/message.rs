//! `dmsetup message <dev> 0 <message>`: the messages the target understands.

use core::ffi::CStr;

use super::arg::{is, Arg};
use super::number::{parse_u32, parse_u64};
use super::table::{MAX_SCRUB_RATE_KIB, MAX_SPARES};

/// A parsed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// `help`: list the messages.
    Help,
    /// `list [<start_sector> [<count>]]`: the remap entries from the unit holding `start_sector`, at most
    /// `count` of them.
    List {
        /// First sector (relative to the target) whose unit is listed.
        start_sector: u64,
        /// Most entries to list.
        count: u64,
    },
    /// `remap <sector>`: move the unit holding `sector` to the spare now (device suspended).
    Remap {
        /// A sector of the unit, relative to the target.
        sector: u64,
    },
    /// `unremap <sector>`: copy the unit back to main, verify it, and drop its entry (device suspended).
    Unremap {
        /// A sector of the unit, relative to the target.
        sector: u64,
    },
    /// `clear_pending <sector>`: forget that the unit failed a read; reads and writes go to main again.
    ClearPending {
        /// A sector of the unit, relative to the target.
        sector: u64,
    },
    /// `stats`: the I/O and error counters, one `key=value` per line.
    Stats,
    /// `clear_stats`: set the I/O and error counters to zero.
    ClearStats,
    /// `spares`: one line per spare device with its member index, device, used and total units and state.
    Spares,
    /// `drain <member>`: move every unit of the spare with that member index to the other spares, then
    /// remove it from the setup.
    Drain {
        /// The spare's member index, as `spares` shows it.
        member: u32,
    },
    /// `scrub start`: start the background scrub (where it stopped).
    ScrubStart,
    /// `scrub stop`: stop it; its position is kept.
    ScrubStop,
    /// `scrub status`: where the scrub stands, one `key=value` per line.
    ScrubStatus,
    /// `scrub rate <KiB/s>`: how fast it reads.
    ScrubRate {
        /// KiB/s, 1 to `table::MAX_SCRUB_RATE_KIB`.
        kib: u32,
    },
}

/// Everything that can be wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// The first word is not a known message.
    Unknown,
    /// A known message with the wrong number of arguments.
    WrongArgumentCount,
    /// A numeric argument that is not a decimal number.
    BadNumber,
    /// `scrub rate` outside 1 to `table::MAX_SCRUB_RATE_KIB`.
    BadScrubRate,
    /// `drain` of a member index no setup can have.
    BadMember,
}

impl MessageError {
    /// A static, specific, one-line explanation (logged, rate-limited, by the kernel).
    pub fn message(self) -> &'static CStr {
        match self {
            Self::Unknown => c"unknown message (send 'help' for the list)",
            Self::WrongArgumentCount => c"wrong number of arguments for this message (send 'help')",
            Self::BadNumber => c"a numeric argument is not a decimal number",
            Self::BadScrubRate => c"scrub rate: expected KiB/s from 1 to 1048576",
            Self::BadMember => c"drain: expected a spare's member index, 0 to 15 (see 'spares')",
        }
    }
}

/// The text `help` returns: one message per line, with its arguments.
pub const HELP: &str = "help: list the messages this target understands\n\
list [<start_sector> [<count>]]: remap entries as '<sector> <spare> <spare_sector> active|pending'\n\
remap <sector>: copy the unit holding <sector> to the spare and use it from now on (suspend first)\n\
unremap <sector>: copy the unit back to main, verify it, and drop its entry (suspend first)\n\
clear_pending <sector>: forget a failed read of the unit; it is read from and written to main again\n\
stats: the I/O and error counters, one key=value per line\n\
clear_stats: set the I/O and error counters to zero\n\
spares: one line per spare: '<index> <major:minor> used=<units> total=<units> state=<state>'\n\
drain <index>: move every unit of that spare to the others, then remove it from the setup\n\
scrub start|stop: start or stop the background scrub of the main device (it resumes where it stopped)\n\
scrub status: where the scrub stands, one key=value per line\n\
scrub rate <KiB/s>: how fast the scrub reads the main device\n";

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
    let no_args = |m: Message| {
        if rest == 0 {
            Ok(m)
        } else {
            Err(MessageError::WrongArgumentCount)
        }
    };
    let mut one_sector = || match (args.next(), rest) {
        (Some(a), 1) => parse_u64(a.bytes()).ok_or(MessageError::BadNumber),
        _ => Err(MessageError::WrongArgumentCount),
    };
    if is(word, "help") {
        return no_args(Message::Help);
    }
    if is(word, "stats") {
        return no_args(Message::Stats);
    }
    if is(word, "clear_stats") {
        return no_args(Message::ClearStats);
    }
    if is(word, "spares") {
        return no_args(Message::Spares);
    }
    if is(word, "drain") {
        let member = match (args.next(), rest) {
            (Some(a), 1) => parse_u32(a.bytes()).ok_or(MessageError::BadNumber)?,
            _ => return Err(MessageError::WrongArgumentCount),
        };
        if usize::try_from(member).is_ok_and(|m| m < MAX_SPARES) {
            return Ok(Message::Drain { member });
        }
        return Err(MessageError::BadMember);
    }
    if is(word, "remap") {
        return Ok(Message::Remap {
            sector: one_sector()?,
        });
    }
    if is(word, "unremap") {
        return Ok(Message::Unremap {
            sector: one_sector()?,
        });
    }
    if is(word, "clear_pending") {
        return Ok(Message::ClearPending {
            sector: one_sector()?,
        });
    }
    if is(word, "scrub") {
        let what = args.next().ok_or(MessageError::WrongArgumentCount)?;
        let (message, words) = if is(what, "start") {
            (Message::ScrubStart, 1)
        } else if is(what, "stop") {
            (Message::ScrubStop, 1)
        } else if is(what, "status") {
            (Message::ScrubStatus, 1)
        } else if is(what, "rate") {
            let kib = match args.next() {
                Some(a) => parse_u32(a.bytes()).ok_or(MessageError::BadNumber)?,
                None => return Err(MessageError::WrongArgumentCount),
            };
            if !(1..=MAX_SCRUB_RATE_KIB).contains(&kib) {
                return Err(MessageError::BadScrubRate);
            }
            (Message::ScrubRate { kib }, 2)
        } else {
            return Err(MessageError::Unknown);
        };
        return if rest == words {
            Ok(message)
        } else {
            Err(MessageError::WrongArgumentCount)
        };
    }
    if is(word, "list") {
        if rest > 2 {
            return Err(MessageError::WrongArgumentCount);
        }
        let mut number = |default: u64| match args.next() {
            Some(a) => parse_u64(a.bytes()).ok_or(MessageError::BadNumber),
            None => Ok(default),
        };
        let start_sector = number(0)?;
        let count = number(u64::MAX)?;
        return Ok(Message::List {
            start_sector,
            count,
        });
    }
    Err(MessageError::Unknown)
}
