//! `tickwire book CHANNEL`: a live order-book ladder with the checksum
//! state (drawn only while every checksum since the snapshot matched). On a terminal the ladder is redrawn in place; piped, each book
//! event prints a ladder followed by a blank line.

use std::io::{IsTerminal, Write};

use tickwire_client::{Client, Item, OrderBook};

use super::{BookArgs, CliError, client_config};

fn draw(
    out: &mut impl Write,
    channel: &str,
    book: &OrderBook,
    levels: usize,
    verified: u64,
    last_notice: Option<&str>,
) -> std::io::Result<()> {
    let (bid, ask) = book.best();
    let spread = match (bid, ask) {
        (Some(b), Some(a)) => format!("{:.*}", book.price_decimals() as usize, a.price - b.price),
        _ => "-".into(),
    };
    writeln!(
        out,
        "{channel}  seq {}  checksum OK ({verified} verified)  spread {spread}",
        book.seq()
    )?;
    if let Some(notice) = last_notice {
        writeln!(out, "last notice: {notice}")?;
    }
    writeln!(
        out,
        "{:>14} {:>16} | {:<16} {:<14}",
        "BID SIZE", "BID", "ASK", "ASK SIZE"
    )?;
    let (pd, sd) = (
        book.price_decimals() as usize,
        book.size_decimals() as usize,
    );
    let bids: Vec<_> = book.bids().take(levels).collect();
    let asks: Vec<_> = book.asks().take(levels).collect();
    for i in 0..levels.max(1) {
        let (bq, bp) = bids.get(i).map_or((String::new(), String::new()), |l| {
            (format!("{:.sd$}", l.quantity), format!("{:.pd$}", l.price))
        });
        let (ap, aq) = asks.get(i).map_or((String::new(), String::new()), |l| {
            (format!("{:.pd$}", l.price), format!("{:.sd$}", l.quantity))
        });
        writeln!(out, "{bq:>14} {bp:>16} | {ap:<16} {aq:<14}")?;
    }
    Ok(())
}

/// Runs the ladder until `--count` book events (or Ctrl-C).
pub async fn book(args: BookArgs) -> Result<(), CliError> {
    let live = std::io::stdout().is_terminal();
    let mut client = Client::connect(client_config(&args.url, &args.token)).await?;
    client.subscribe(&[&args.channel]).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut last_notice: Option<String> = None;
    let mut shown = 0;
    while let Some(item) = client.next().await {
        match item? {
            Item::Event(ev) if ev.channel() == args.channel => {
                let Some(book) = client.book(&args.channel) else {
                    continue;
                };
                if live {
                    write!(out, "\x1b[H\x1b[2J")?;
                }
                draw(
                    &mut out,
                    &args.channel,
                    book,
                    args.levels,
                    client.stats().checksums_verified,
                    last_notice.as_deref(),
                )?;
                if !live {
                    writeln!(out)?;
                }
                out.flush()?;
                shown += 1;
                if args.count.is_some_and(|c| shown >= c) {
                    break;
                }
            }
            Item::Event(_) => {}
            notice => {
                // The ladder is only drawn while the book is verified; a
                // resync shows here and on stderr until the snapshot.
                let text = super::render::notice(&notice);
                eprintln!("notice: {text}");
                last_notice = Some(text);
            }
        }
    }
    client.close().await;
    Ok(())
}
