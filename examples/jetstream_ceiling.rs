//! What nats-server itself stores per second, without tickwire: one
//! publisher sends small messages over `SUBJECTS` subjects of a file-backed
//! stream as fast as it can (an ack asked on every 32nd), optionally with a
//! per-subject limit, and prints the stored messages per second. Used in
//! BENCHMARKS.md to show where JetStream's own ceiling is.
//!
//! ```text
//! nats-server -js -sd /tmp/js -a 127.0.0.1 -p 4333 &
//! cargo run --release --example jetstream_ceiling -- nats://127.0.0.1:4333 SUBJECTS PER_SUBJECT SIZE
//! ```
//!
//! `PER_SUBJECT` is the stream's `max_messages_per_subject` (-1: none).
//! The stream `CEILING` (subjects `ceiling.>`) is deleted and made anew.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use bytes::Bytes;

const WINDOW: Duration = Duration::from_secs(5);

fn arg<T: std::str::FromStr>(i: usize, name: &str) -> T {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("usage: jetstream_ceiling NATS_URL SUBJECTS PER_SUBJECT SIZE ({name}?)");
            std::process::exit(2)
        })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url: String = arg(1, "NATS_URL");
    let subjects: usize = arg(2, "SUBJECTS");
    let per_subject: i64 = arg(3, "PER_SUBJECT");
    let size: usize = arg(4, "SIZE");
    let client = async_nats::connect(&url).await?;
    let js = jetstream::new(client.clone());
    let _ = js.delete_stream("CEILING").await;
    js.create_stream(stream::Config {
        name: "CEILING".into(),
        subjects: vec!["ceiling.>".into()],
        max_messages_per_subject: per_subject,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let names: Vec<String> = (0..subjects).map(|i| format!("ceiling.s{i}")).collect();
    let payload = Bytes::from(vec![7u8; size]);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut last_ack = None;
    while start.elapsed() < WINDOW {
        for _ in 0..1000 {
            let subject = names[sent as usize % subjects].clone();
            if sent % 32 == 31 {
                last_ack = Some(js.publish(subject, payload.clone()).await?);
            } else {
                client.publish(subject, payload.clone()).await?;
            }
            sent += 1;
        }
    }
    if let Some(ack) = last_ack {
        ack.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let stored = js
        .get_stream("CEILING")
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    println!(
        "subjects {subjects} per-subject limit {per_subject} size {size}: sent {sent}, stored {stored} in {secs:.2} s = {:.0} messages/s",
        stored as f64 / secs
    );
    Ok(())
}
