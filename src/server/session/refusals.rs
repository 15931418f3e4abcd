//! The refused names of one request, answered as one `error` per error
//! code however many names were refused (a request naming thousands of bad
//! channels gets one message, not thousands).

use crate::protocol::pb::ErrorCode;

/// Names listed in an error's message text (all are in its `channels`).
const NAMES_IN_MESSAGE: usize = 8;

/// Refusals of one code: the first one's message and every name.
#[derive(Debug)]
struct Group {
    code: ErrorCode,
    first_message: String,
    names: Vec<String>,
}

/// Collects refusals while a request is handled.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    groups: Vec<Group>,
}

/// One `error` to send: code, message, first name, every name.
pub(super) struct Answer {
    pub code: ErrorCode,
    pub message: String,
    pub channel: String,
    pub channels: Vec<String>,
}

impl Refusals {
    /// Records that `name` was refused with `code`; `message` is built only
    /// for the first refusal of each code.
    pub fn add(&mut self, code: ErrorCode, name: &str, message: impl FnOnce() -> String) {
        match self.groups.iter_mut().find(|g| g.code == code) {
            Some(g) => g.names.push(name.to_string()),
            None => self.groups.push(Group {
                code,
                first_message: message(),
                names: vec![name.to_string()],
            }),
        }
    }

    /// The errors to send, one per code, in the order codes first occurred.
    /// A single refusal keeps its own message; several are summarised.
    pub fn into_answers(self) -> impl Iterator<Item = Answer> {
        self.groups.into_iter().map(|g| {
            let channel = g.names[0].clone();
            if g.names.len() == 1 {
                return Answer {
                    code: g.code,
                    message: g.first_message,
                    channel,
                    channels: Vec::new(),
                };
            }
            let shown = g.names[1..]
                .iter()
                .take(NAMES_IN_MESSAGE)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let more = g.names.len().saturating_sub(1 + NAMES_IN_MESSAGE);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            Answer {
                code: g.code,
                message: format!(
                    "{} names refused: {}; likewise {shown}{more} (all listed in `channels`)",
                    g.names.len(),
                    g.first_message
                ),
                channel,
                channels: g.names,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_per_code_however_many_names() {
        let mut r = Refusals::default();
        for i in 0..1000 {
            r.add(ErrorCode::UnknownChannel, &format!("a.b.c{i}"), || {
                format!("no channel named a.b.c{i}")
            });
        }
        r.add(ErrorCode::InvalidChannel, "x", || "x: bad".into());
        let answers: Vec<_> = r.into_answers().collect();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0].channels.len(), 1000);
        assert_eq!(answers[0].channel, "a.b.c0");
        assert!(
            answers[0]
                .message
                .starts_with("1000 names refused: no channel named a.b.c0")
        );
        assert!(
            answers[0].message.contains("and 991 more"),
            "{}",
            answers[0].message
        );
        assert!(answers[0].message.len() < 300);
        assert_eq!(answers[1].message, "x: bad");
        assert!(answers[1].channels.is_empty());
    }
}
