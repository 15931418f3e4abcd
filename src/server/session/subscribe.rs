//! Subscribing and unsubscribing: bounded, incremental work per request.
//!
//! A request carries at most `--max-names-per-request` names; repeated names
//! collapse before anything is expanded; each channel is answered once
//! however many of the request's patterns match it; the registry is read
//! once per request; removing a subscription touches only its own index
//! entry; refusals are one `error` per code. The work done (names, channels
//! examined, answer bytes) is charged to the connection's rate limit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::refusals::Refusals;
use super::{
    AuthState, CONFLATE_MS_MAX, CONFLATE_MS_MIN, Session, Subscription, msg, valid_conflate_ms,
};
use crate::feed::{Channel, ChannelId, Cursor, Encoded};
use crate::metrics::{dec, inc};
use crate::protocol::pb::{
    ChannelState, ErrorCode, ResumePosition, Subscribed, Unsubscribed, server_message,
};
use crate::protocol::{Pattern, now_ns};

/// Unknown names that get a "did you mean" (each costs a registry scan).
const SUGGESTIONS_PER_REQUEST: usize = 4;

impl Session {
    /// Refuses a request that names nothing or too many names; `true` when
    /// it may go on.
    fn names_within_limit(&mut self, request_id: u64, what: &str, count: usize) -> bool {
        self.work.names += count as u64;
        let cap = self.ctx.config.max_names_per_request as usize;
        if count == 0 {
            self.error(
                request_id,
                ErrorCode::BadRequest,
                format!("{what} names no channel"),
                "",
            );
            return false;
        }
        if count > cap {
            self.error(
                request_id,
                ErrorCode::BadRequest,
                format!(
                    "{what} carries {count} names; at most {cap} per request \
                     (--max-names-per-request): split it into several requests"
                ),
                "",
            );
            return false;
        }
        true
    }

    /// Whether the session's token (if any) allows `pattern`.
    fn granted(&self, pattern: &Pattern) -> bool {
        match &self.auth {
            AuthState::Granted(grant) => grant.allows(pattern),
            _ => true,
        }
    }

    /// Sends the collected refusals (before the request's answer).
    fn send_refusals(&mut self, request_id: u64, refusals: Refusals) {
        for a in refusals.into_answers() {
            self.error_with(request_id, a.code, a.message, &a.channel, a.channels);
        }
    }

    pub(super) fn subscribe(
        &mut self,
        request_id: u64,
        names: &[String],
        resume: &HashMap<String, ResumePosition>,
        snapshot: bool,
        conflate_ms: u32,
    ) {
        if !self.names_within_limit(request_id, "subscribe", names.len()) {
            return;
        }
        if !valid_conflate_ms(conflate_ms) {
            self.error(
                request_id,
                ErrorCode::BadRequest,
                format!(
                    "conflate_ms {conflate_ms} is out of range: 0 (every event) or \
                     {CONFLATE_MS_MIN}..={CONFLATE_MS_MAX} milliseconds"
                ),
                "",
            );
            return;
        }
        let limit = self.ctx.config.max_subscriptions;
        let mut refusals = Refusals::default();
        let mut seen = HashSet::with_capacity(names.len());
        let mut answered: HashSet<ChannelId> = HashSet::new();
        let mut states = Vec::new();
        let mut snapshots = Vec::new();
        let mut accepted = false;
        // read before any listing below (see the pattern branch)
        let seen_upto = self.ctx.hub.registry().count();
        let mut all: Option<Vec<Arc<Channel>>> = None;
        let mut suggestions = SUGGESTIONS_PER_REQUEST;
        for name in names {
            if !seen.insert(name.as_str()) {
                continue; // a repeated name or pattern is answered once
            }
            let pattern = match Pattern::parse(name) {
                Ok(p) => p,
                Err(e) => {
                    refusals.add(ErrorCode::InvalidChannel, name, || format!("{name}: {e}"));
                    continue;
                }
            };
            if !self.granted(&pattern) {
                refusals.add(ErrorCode::Forbidden, name, || {
                    format!("{name}: the token does not allow this channel")
                });
                continue;
            }
            let too_many =
                || format!("{name}: a connection may hold at most {limit} subscriptions");
            if pattern.is_exact() {
                let Some(channel) = self.ctx.hub.registry().get(name) else {
                    let hint = if suggestions > 0 {
                        suggestions -= 1;
                        let all = all.get_or_insert_with(|| self.ctx.hub.registry().all());
                        self.work.channels += all.len() as u64;
                        suggest(name, all)
                            .map(|s| format!("; did you mean {s}?"))
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    refusals.add(ErrorCode::UnknownChannel, name, || {
                        format!("no channel named {name}{hint}")
                    });
                    continue;
                };
                let position = resume.get(name);
                match self.add(
                    &channel,
                    true,
                    position,
                    snapshot,
                    conflate_ms,
                    &mut snapshots,
                ) {
                    Some(state) => {
                        accepted = true;
                        if answered.insert(channel.id) {
                            states.push(state);
                        }
                    }
                    None => refusals.add(ErrorCode::TooManySubscriptions, name, too_many),
                }
                continue;
            }
            if let Some(i) = self.patterns.iter().position(|p| *p == pattern) {
                // the latest subscribe sets the rate of what it names
                self.pattern_conflate_ms[i] = conflate_ms;
            } else {
                if self.subscription_count() >= limit as usize {
                    refusals.add(ErrorCode::TooManySubscriptions, name, too_many);
                    continue;
                }
                self.patterns.push(pattern.clone());
                self.pattern_conflate_ms.push(conflate_ms);
                if !self.watching {
                    self.ctx.hub.registry().watch_new_channels(&self.bell);
                    self.watching = true;
                }
            }
            accepted = true;
            let all = all.get_or_insert_with(|| self.ctx.hub.registry().all());
            self.work.channels += all.len() as u64;
            // the registry's count, read before the listing, is where pattern
            // adoption goes on from (a channel seen twice is skipped there)
            self.channels_seen = self.channels_seen.max(seen_upto);
            for channel in all.iter().filter(|c| pattern.matches(&c.name)) {
                let position = resume.get(&*channel.name);
                match self.add(
                    channel,
                    false,
                    position,
                    snapshot,
                    conflate_ms,
                    &mut snapshots,
                ) {
                    Some(state) => {
                        if answered.insert(channel.id) {
                            states.push(state);
                        }
                    }
                    None => {
                        let cname = &channel.name;
                        refusals.add(ErrorCode::TooManySubscriptions, cname, || {
                            format!("{cname}: a connection may hold at most {limit} subscriptions")
                        });
                        break;
                    }
                }
            }
        }
        self.send_refusals(request_id, refusals);
        if accepted {
            self.push(msg(server_message::Kind::Subscribed(Subscribed {
                request_id,
                channels: states,
            })));
        }
        self.queue_snapshots(snapshots);
    }

    /// Subscribes to one concrete channel with `conflate_ms` (valid; 0 =
    /// off); `None` when over the limit. A channel already held keeps its
    /// position and takes the new `conflate_ms`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
        &mut self,
        channel: &Arc<Channel>,
        exact: bool,
        resume: Option<&ResumePosition>,
        snapshot: bool,
        conflate_ms: u32,
        snapshots: &mut Vec<Arc<Encoded>>,
    ) -> Option<ChannelState> {
        let epoch = self.ctx.hub.epoch().to_string();
        if let Some(&i) = self.index.get(&channel.id) {
            self.set_conflation(i, conflate_ms, now_ns());
            let sub = &mut self.subs[i];
            sub.exact |= exact;
            return Some(ChannelState {
                channel: channel.name.to_string(),
                seq: sub.cursor.next_seq() - 1,
                epoch,
                recovered: false,
            });
        }
        if self.subscription_count() >= self.ctx.config.max_subscriptions as usize {
            return None;
        }
        // Register first: an event published from here on rings us, and the
        // cursor below decides what we have already covered.
        let arm = channel.add_subscriber(&self.bell);
        // resumed from the ring when it still holds what follows (see
        // `feed::cursor`), else from the head after a snapshot
        let resumed = resume
            .filter(|r| r.epoch == epoch)
            .and_then(|r| Cursor::resume(channel, r.seq));
        let (cursor, recovered) = match resumed {
            Some(cursor) => (cursor, true),
            None => {
                let pos = self.ctx.hub.position(channel);
                if snapshot && let Some(snap) = pos.snapshot {
                    snapshots.push(snap);
                }
                (Cursor::at(channel, pos.seq), false)
            }
        };
        let seq = cursor.next_seq() - 1;
        self.index.insert(channel.id, self.subs.len());
        self.subs.push(Subscription {
            cursor,
            exact,
            arm,
            conflation: None,
        });
        if conflate_ms > 0 {
            self.set_conflation(self.subs.len() - 1, conflate_ms, now_ns());
        }
        inc(&self.ctx.metrics.subscriptions);
        Some(ChannelState {
            channel: channel.name.to_string(),
            seq,
            epoch,
            recovered,
        })
    }

    /// Removes the subscription at `i` in O(1): the last one takes its
    /// place and only that one's index entry changes.
    fn remove_at(&mut self, i: usize) -> Subscription {
        let sub = self.subs.swap_remove(i);
        if sub.conflation.is_some() {
            self.conflated -= 1;
        }
        self.index.remove(&sub.channel().id);
        if let Some(moved) = self.subs.get(i) {
            self.index.insert(moved.channel().id, i);
        }
        sub.channel().remove_subscriber(&sub.arm);
        dec(&self.ctx.metrics.subscriptions);
        sub
    }

    /// Removes, in one pass, every subscription `gone` says must go.
    fn remove_where(
        &mut self,
        mut gone: impl FnMut(&Session, &Subscription) -> bool,
    ) -> Vec<String> {
        self.work.channels += self.subs.len() as u64;
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.subs.len() {
            if gone(self, &self.subs[i]) {
                removed.push(self.remove_at(i).channel().name.to_string());
            } else {
                i += 1;
            }
        }
        removed
    }

    /// Whether a remaining pattern covers `name`.
    fn pattern_covers(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(name))
    }

    pub(super) fn unsubscribe(&mut self, request_id: u64, names: &[String]) {
        // an empty unsubscribe is answered (with nothing removed), as always
        if !names.is_empty() && !self.names_within_limit(request_id, "unsubscribe", names.len()) {
            return;
        }
        let mut refusals = Refusals::default();
        let mut seen = HashSet::with_capacity(names.len());
        let mut removed = Vec::new();
        let mut gone_patterns = Vec::new();
        for name in names {
            if !seen.insert(name.as_str()) {
                continue;
            }
            let pattern = match Pattern::parse(name) {
                Ok(p) => p,
                Err(e) => {
                    refusals.add(ErrorCode::InvalidChannel, name, || format!("{name}: {e}"));
                    continue;
                }
            };
            if pattern.is_exact() {
                let at = self
                    .ctx
                    .hub
                    .registry()
                    .get(name)
                    .and_then(|c| self.index.get(&c.id).copied());
                if let Some(i) = at {
                    self.remove_at(i);
                    removed.push(name.clone());
                }
            } else if let Some(i) = self.patterns.iter().position(|p| *p == pattern) {
                self.patterns.swap_remove(i);
                self.pattern_conflate_ms.swap_remove(i);
                gone_patterns.push(pattern);
                removed.push(name.clone());
            }
        }
        if !gone_patterns.is_empty() {
            // one pass for all the request's patterns
            removed.extend(self.remove_where(|s, sub| {
                !sub.exact
                    && gone_patterns.iter().any(|p| p.matches(&sub.channel().name))
                    && !s.pattern_covers(&sub.channel().name)
            }));
        }
        self.send_refusals(request_id, refusals);
        self.push(msg(server_message::Kind::Unsubscribed(Unsubscribed {
            request_id,
            channels: removed,
        })));
    }

    /// After a token refresh: drops the patterns and channels the new grant
    /// does not cover (and channels only those patterns held); returns
    /// their names.
    pub(super) fn revoke_uncovered(&mut self) -> Vec<String> {
        let AuthState::Granted(grant) = &self.auth else {
            return Vec::new();
        };
        if grant.channels.is_none() {
            return Vec::new();
        }
        let grant = grant.clone();
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.patterns.len() {
            if grant.allows(&self.patterns[i]) {
                i += 1;
            } else {
                removed.push(self.patterns.swap_remove(i).as_str().to_string());
                self.pattern_conflate_ms.swap_remove(i);
            }
        }
        removed.extend(self.remove_where(|s, sub| {
            let name = &sub.channel().name;
            !grant.allows_channel(name) || (!sub.exact && !s.pattern_covers(name))
        }));
        removed
    }
}

/// A close existing channel name for a mistyped one: the same name once
/// case and `-`/`_` are ignored (`BTCUSDT` for `BTC-USDT`), else the nearest
/// name within an edit distance of 2.
fn suggest(name: &str, channels: &[Arc<Channel>]) -> Option<String> {
    let fold = |s: &str| {
        s.chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let wanted = fold(name);
    if let Some(c) = channels.iter().find(|c| fold(&c.name) == wanted) {
        return Some(c.name.to_string());
    }
    channels
        .iter()
        .map(|c| (strsim::levenshtein(name, &c.name), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.name.to_string())
}
