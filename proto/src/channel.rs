//! Channel names and subscription patterns.
//!
//! A channel is `<stream>.<venue>.<instrument>`: exactly three tokens of
//! `[A-Za-z0-9_-]`, at most 128 bytes. A pattern has the same shape where a
//! token may be `*`, matching exactly one token. Matching never allocates: it
//! walks the name's tokens against the pattern's.

use thiserror::Error;

/// Longest channel name or pattern accepted, in bytes.
pub const MAX_CHANNEL_LEN: usize = 128;
/// Number of dot-separated tokens in a channel name.
pub const TOKENS: usize = 3;

/// Why a channel name or pattern was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChannelError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name is {0} bytes, the limit is {MAX_CHANNEL_LEN}")]
    TooLong(usize),
    #[error(
        "channel name needs {TOKENS} dot-separated tokens (<stream>.<venue>.<instrument>), got {0}"
    )]
    TokenCount(usize),
    #[error("token {index} of the channel name is empty")]
    EmptyToken { index: usize },
    #[error("token {index} of the channel name has a character outside [A-Za-z0-9_-]")]
    BadCharacter { index: usize },
    #[error("`*` is a pattern, not a channel name")]
    WildcardInName,
}

/// One token of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PatternToken {
    /// `*`: any single token.
    Any,
    /// This exact token.
    Exact(Box<str>),
}

/// A parsed subscription pattern; an exact channel name is a pattern without `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    source: Box<str>,
    tokens: [PatternToken; TOKENS],
}

fn valid_token(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_shape(s: &str) -> Result<(), ChannelError> {
    if s.is_empty() {
        return Err(ChannelError::Empty);
    }
    if s.len() > MAX_CHANNEL_LEN {
        return Err(ChannelError::TooLong(s.len()));
    }
    let count = s.split('.').count();
    if count != TOKENS {
        return Err(ChannelError::TokenCount(count));
    }
    Ok(())
}

/// Checks that `name` is a concrete channel name (no wildcard).
pub fn validate_channel(name: &str) -> Result<(), ChannelError> {
    check_shape(name)?;
    for (index, token) in name.split('.').enumerate() {
        if token.is_empty() {
            return Err(ChannelError::EmptyToken { index });
        }
        if token == "*" {
            return Err(ChannelError::WildcardInName);
        }
        if !valid_token(token) {
            return Err(ChannelError::BadCharacter { index });
        }
    }
    Ok(())
}

impl Pattern {
    /// Parses a channel name or a pattern with `*` tokens.
    pub fn parse(s: &str) -> Result<Self, ChannelError> {
        check_shape(s)?;
        let mut tokens: [PatternToken; TOKENS] =
            [PatternToken::Any, PatternToken::Any, PatternToken::Any];
        for (index, token) in s.split('.').enumerate() {
            tokens[index] = match token {
                "" => return Err(ChannelError::EmptyToken { index }),
                "*" => PatternToken::Any,
                t if valid_token(t) => PatternToken::Exact(t.into()),
                _ => return Err(ChannelError::BadCharacter { index }),
            };
        }
        Ok(Self {
            source: s.into(),
            tokens,
        })
    }

    /// The text the pattern was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern has no `*` and so names one channel.
    pub fn is_exact(&self) -> bool {
        self.tokens
            .iter()
            .all(|t| matches!(t, PatternToken::Exact(_)))
    }

    /// Whether every channel `other` matches is also matched by `self`
    /// (token by token: `*` covers anything, a name only itself).
    pub fn covers(&self, other: &Pattern) -> bool {
        self.tokens
            .iter()
            .zip(&other.tokens)
            .all(|(mine, theirs)| match (mine, theirs) {
                (PatternToken::Any, _) => true,
                (PatternToken::Exact(a), PatternToken::Exact(b)) => a == b,
                (PatternToken::Exact(_), PatternToken::Any) => false,
            })
    }

    /// Whether `channel` (a valid channel name) is covered by this pattern.
    pub fn matches(&self, channel: &str) -> bool {
        let mut parts = channel.split('.');
        for token in &self.tokens {
            match (token, parts.next()) {
                (_, None) => return false,
                (PatternToken::Any, Some(_)) => {}
                (PatternToken::Exact(want), Some(got)) => {
                    if **want != *got {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// What a channel carries, from its stream token (`candle1m` -> candle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    Trade,
    Ticker,
    Book,
    Candle,
    Signal,
    Sentiment,
    Scan,
    Custom,
}

impl ChannelKind {
    /// Kind of a valid channel name.
    pub fn of(channel: &str) -> Self {
        let stream = channel.split('.').next().unwrap_or_default();
        match stream {
            "trade" => Self::Trade,
            "ticker" => Self::Ticker,
            "book" => Self::Book,
            "signal" => Self::Signal,
            "sentiment" => Self::Sentiment,
            "scan" => Self::Scan,
            s if s.starts_with("candle") => Self::Candle,
            _ => Self::Custom,
        }
    }

    /// The name shown in `ChannelInfo.kind` and `/channels`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trade => "trade",
            Self::Ticker => "ticker",
            Self::Book => "book",
            Self::Candle => "candle",
            Self::Signal => "signal",
            Self::Sentiment => "sentiment",
            Self::Scan => "scan",
            Self::Custom => "custom",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for name in [
            "trade.binance.BTC-USDT",
            "ticker.sim.ETH-USDT",
            "candle1m.sim.BTC-USDT",
            "sentiment.sim.market",
            "a_b.c-d.E1",
        ] {
            assert_eq!(validate_channel(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn invalid_names() {
        assert_eq!(validate_channel(""), Err(ChannelError::Empty));
        assert_eq!(
            validate_channel("trade.sim"),
            Err(ChannelError::TokenCount(2))
        );
        assert_eq!(
            validate_channel("a.b.c.d"),
            Err(ChannelError::TokenCount(4))
        );
        assert_eq!(
            validate_channel("trade..BTC"),
            Err(ChannelError::EmptyToken { index: 1 })
        );
        assert_eq!(
            validate_channel("trade.sim.BTC/USDT"),
            Err(ChannelError::BadCharacter { index: 2 })
        );
        assert_eq!(
            validate_channel("trade.*.BTC"),
            Err(ChannelError::WildcardInName)
        );
        assert_eq!(
            validate_channel("trade.sim.BTC USDT"),
            Err(ChannelError::BadCharacter { index: 2 })
        );
        let long = format!("trade.sim.{}", "X".repeat(119));
        assert_eq!(validate_channel(&long), Err(ChannelError::TooLong(129)));
        let just_fits = format!("trade.sim.{}", "X".repeat(118));
        assert_eq!(validate_channel(&just_fits), Ok(()));
    }

    #[test]
    fn patterns_match_one_token_per_star() {
        let p = Pattern::parse("ticker.*.*").unwrap();
        assert!(!p.is_exact());
        assert!(p.matches("ticker.sim.BTC-USDT"));
        assert!(p.matches("ticker.okx.SOL-USDT"));
        assert!(!p.matches("trade.sim.BTC-USDT"));
        let p = Pattern::parse("trade.binance.*").unwrap();
        assert!(p.matches("trade.binance.ETH-USDT"));
        assert!(!p.matches("trade.okx.ETH-USDT"));
        assert!(!p.matches("trade.binance"));
        assert!(!p.matches("trade.binance.ETH-USDT.x"));
        let p = Pattern::parse("*.sim.BTC-USDT").unwrap();
        assert!(p.matches("book.sim.BTC-USDT"));
        assert!(!p.matches("book.sim.BTC-USD"));
    }

    #[test]
    fn exact_pattern_matches_only_itself() {
        let p = Pattern::parse("book.sim.BTC-USDT").unwrap();
        assert!(p.is_exact());
        assert_eq!(p.as_str(), "book.sim.BTC-USDT");
        assert!(p.matches("book.sim.BTC-USDT"));
        assert!(!p.matches("book.sim.BTC-USDTX"));
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(
            Pattern::parse("**.a.b"),
            Err(ChannelError::BadCharacter { index: 0 })
        );
        assert_eq!(Pattern::parse("a.b"), Err(ChannelError::TokenCount(2)));
        assert_eq!(
            Pattern::parse(".a.b"),
            Err(ChannelError::EmptyToken { index: 0 })
        );
    }

    #[test]
    fn kinds() {
        assert_eq!(ChannelKind::of("candle1m.sim.X"), ChannelKind::Candle);
        assert_eq!(ChannelKind::of("book.sim.X"), ChannelKind::Book);
        assert_eq!(ChannelKind::of("news.app.feed"), ChannelKind::Custom);
        assert_eq!(ChannelKind::of("scan.sim.all").as_str(), "scan");
    }
}
