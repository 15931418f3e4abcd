//! Prints trades as they happen, and every notice.
//!
//! `cargo run -p tickwire-client --example trades -- ws://127.0.0.1:8080/ws 'trade.sim.*'`

use tickwire_client::{Client, ClientConfig, Item, pb::event::Payload};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tickwire_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let pattern = args.next().unwrap_or_else(|| "trade.sim.*".into());
    let mut client = Client::connect(ClientConfig::new(url)).await?;
    client.subscribe(&[&pattern]).await?;
    while let Some(item) = client.next().await {
        match item? {
            Item::Event(ev) => {
                if let Some(Payload::Trade(t)) = ev.payload() {
                    println!(
                        "{:<24} {:>8} {:>12} {:>12} {:?}",
                        ev.channel(),
                        ev.seq(),
                        t.price,
                        t.quantity,
                        t.side()
                    );
                }
            }
            notice => eprintln!("notice: {notice:?}"),
        }
    }
    Ok(())
}
