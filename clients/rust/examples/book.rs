//! Keeps a verified order book and prints its top after every event.
//!
//! `cargo run -p tickwire-client --example book -- ws://127.0.0.1:8080/ws book.sim.BTC-USDT`

use tickwire_client::{Client, ClientConfig, Item};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tickwire_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let channel = args.next().unwrap_or_else(|| "book.sim.BTC-USDT".into());
    let mut client = Client::connect(ClientConfig::new(url)).await?;
    client.subscribe(&[&channel]).await?;
    while let Some(item) = client.next().await {
        match item? {
            Item::Event(ev) => {
                if let Some(book) = client.book(ev.channel()) {
                    let (bid, ask) = book.best();
                    println!(
                        "seq {} checksum ok: bid {:?} ask {:?}",
                        ev.seq(),
                        bid.map(|l| (l.price, l.quantity)),
                        ask.map(|l| (l.price, l.quantity))
                    );
                }
            }
            notice => eprintln!("notice: {notice:?}"),
        }
    }
    Ok(())
}
