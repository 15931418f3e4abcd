//! Kraken Spot WebSocket v2 as the mock speaks it (Kraken API Center,
//! "Spot WebSocket v2" `book`/`trade`/`ticker`/`subscribe`, and "Book
//! checksum (WebSocket v2)", as read 2026-12-07):
//!
//! - prices and quantities are JSON numbers written with the pair's full
//!   precision (`"qty": 0.10000000`, never `0.1`), which the checksum uses;
//! - every book message (snapshot and update) carries `checksum`: CRC32 of
//!   the top 10 asks (low to high) then the top 10 bids (high to low), each
//!   price then qty with `.` and leading zeros removed;
//! - the venue's book is cut to the subscribed depth after every message
//!   (no removal is sent for levels that fall out of it);
//! - trades carry a sequential integer `trade_id`;
//! - a `subscribe` naming an unknown pair is answered per symbol with
//!   `{"method":"subscribe","success":false,"error":"Currency pair not
//!   supported ..","symbol":..}`; `{"channel":"heartbeat"}` comes about
//!   once a second while subscribed.
//!
//! [`VenueBook`] is the venue's side of that: the test changes it and
//! sends what Kraken would send.

use std::collections::BTreeMap;

/// Levels as text (price, qty), best first.
pub type TextSide = Vec<(String, String)>;
/// Levels as numbers (price, qty), best first.
pub type NumSide = Vec<(f64, f64)>;

/// Kraken's checksum done literally from the doc's wording (the oracle).
pub fn checksum(asks: &[(String, String)], bids: &[(String, String)]) -> u32 {
    let mut text = String::new();
    for (p, q) in asks.iter().take(10).chain(bids.iter().take(10)) {
        for n in [p, q] {
            text.push_str(n.replace('.', "").trim_start_matches('0'));
        }
    }
    crc32fast::hash(text.as_bytes())
}

/// The venue's book of one symbol, prices with 1 decimal and quantities
/// with 8 (BTC/USD's `pair_decimals` / `lot_decimals`).
pub struct VenueBook {
    pub symbol: String,
    pub depth: usize,
    /// Keyed by price in tenths.
    bids: BTreeMap<i64, f64>,
    asks: BTreeMap<i64, f64>,
}

fn px(tenths: i64) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn qty(q: f64) -> String {
    format!("{q:.8}")
}

impl VenueBook {
    pub fn new(symbol: &str, depth: usize) -> Self {
        Self {
            symbol: symbol.into(),
            depth,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        }
    }

    /// Sets a level (`qty` 0 removes it), prices in tenths.
    pub fn set(&mut self, bid: bool, tenths: i64, q: f64) {
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if q == 0.0 {
            side.remove(&tenths);
        } else {
            side.insert(tenths, q);
        }
    }

    fn truncate(&mut self) {
        while self.bids.len() > self.depth {
            let k = *self.bids.keys().next().unwrap();
            self.bids.remove(&k);
        }
        while self.asks.len() > self.depth {
            let k = *self.asks.keys().next_back().unwrap();
            self.asks.remove(&k);
        }
    }

    /// Best first, as text.
    pub fn sides(&self) -> (TextSide, TextSide) {
        let bids = self
            .bids
            .iter()
            .rev()
            .map(|(p, q)| (px(*p), qty(*q)))
            .collect();
        let asks = self.asks.iter().map(|(p, q)| (px(*p), qty(*q))).collect();
        (bids, asks)
    }

    /// The top `n` a side as numbers, best first.
    pub fn top(&self, n: usize) -> (NumSide, NumSide) {
        let f = |v: &[(String, String)]| -> NumSide {
            v.iter()
                .take(n)
                .map(|(p, q)| (p.parse().unwrap(), q.parse().unwrap()))
                .collect()
        };
        let (b, a) = self.sides();
        (f(&b), f(&a))
    }

    pub fn checksum(&self) -> u32 {
        let (b, a) = self.sides();
        checksum(&a, &b)
    }

    /// The snapshot message of the whole (truncated) book.
    pub fn snapshot(&mut self) -> String {
        self.truncate();
        let (b, a) = self.sides();
        self.message("snapshot", &b, &a, self.checksum())
    }

    /// Applies `changes` (bid?, tenths, qty) and returns the update
    /// message Kraken sends, with its checksum (or `wrong_checksum`).
    pub fn update(&mut self, changes: &[(bool, i64, f64)], wrong_checksum: bool) -> String {
        for (bid, p, q) in changes {
            self.set(*bid, *p, *q);
        }
        self.truncate();
        let lv = |bid: bool| -> Vec<(String, String)> {
            changes
                .iter()
                .filter(|c| c.0 == bid)
                .map(|(_, p, q)| (px(*p), qty(*q)))
                .collect()
        };
        let sum = if wrong_checksum {
            self.checksum() ^ 1
        } else {
            self.checksum()
        };
        self.message("update", &lv(true), &lv(false), sum)
    }

    fn message(
        &self,
        kind: &str,
        bids: &[(String, String)],
        asks: &[(String, String)],
        checksum: u32,
    ) -> String {
        // numbers as JSON numbers with their full text (no quotes)
        let lv = |v: &[(String, String)]| -> String {
            v.iter()
                .map(|(p, q)| format!(r#"{{"price":{p},"qty":{q}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"{}","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"2026-12-07T06:00:00.000000Z"}}]}}"#,
            self.symbol,
            lv(bids),
            lv(asks)
        )
    }
}

/// A `trade` push with one trade.
pub fn trade(symbol: &str, id: u64, price: &str) -> String {
    format!(
        r#"{{"channel":"trade","type":"update","data":[{{"symbol":"{symbol}","side":"buy","price":{price},"qty":0.00100000,"ord_type":"market","trade_id":{id},"timestamp":"2026-12-07T06:00:00.123456Z"}}]}}"#
    )
}

/// `GET /0/public/AssetPairs` with BTC/USD (1 price, 8 lot decimals).
pub fn asset_pairs() -> String {
    r#"{"error":[],"result":{"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","base":"XXBT","quote":"ZUSD","pair_decimals":1,"cost_decimals":5,"lot_decimals":8,"status":"online"}}}"#.into()
}

/// `GET /0/public/Ticker?pair=XBTUSD` (REST "Get Ticker Information":
/// arrays of strings; `a`/`b` = price, whole lot volume, lot volume;
/// `c` = last, lot volume; `v`, `l`, `h` = today, last 24 h; `o` = open).
pub fn rest_ticker(last: &str) -> String {
    format!(
        r#"{{"error":[],"result":{{"XXBTZUSD":{{"a":["50001.0","1","1.000"],"b":["50000.0","2","2.000"],"c":["{last}","0.01"],"v":["100.5","2000.25"],"p":["50000.0","49900.0"],"t":[100,2000],"l":["49000.0","48000.0"],"h":["51000.0","52000.0"],"o":"49000.0"}}}}}}"#
    )
}
