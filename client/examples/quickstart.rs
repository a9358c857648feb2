//! Quickstart: connect, create a map, write and read typed values, batch-write, dump, clean up.
//!
//! Run it against a daemon (the address comes from BPFMAP_SERVER, else the default socket):
//!
//!     BPFMAP_SERVER=unix:/run/bpfmapd/bpfmapd.sock cargo run -p bpfmap-client --example quickstart

use bpfmap_client::{from_bytes, Client, CreateMap, Entry, Flag, MapRef};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), bpfmap_client::Error> {
    let client = Client::from_env().await?;

    // A hash map of u32 -> u64 counters. Ephemeral: no pin, gone with the daemon.
    let info = client
        .create_map(CreateMap::hash("quickstart", 4, 8, 1024).ephemeral(true))
        .await?;
    let map = MapRef::from(info.id);
    println!(
        "created {} (key {}B, value {}B)",
        info.name, info.key_size, info.value_size
    );

    // Typed keys and values (any bytemuck::Pod type), in the daemon host's byte order.
    client
        .update_pod::<u32, u64>(&map, &1, &42, Flag::Any)
        .await?;
    let n = client.lookup_pod::<u32, u64>(&map, &1).await?;
    println!("counter 1 = {n}");

    // Every failure is one Error type that keeps the gRPC code.
    match client.lookup_pod::<u32, u64>(&map, &2).await {
        Err(e) if e.is_not_found() => println!("counter 2 is not set"),
        Err(e) => return Err(e),
        Ok(v) => println!("counter 2 = {v}"),
    }
    if let Err(e) = client
        .update_pod::<u32, u64>(&map, &1, &0, Flag::NoExist)
        .await
    {
        println!(
            "NOEXIST on an existing key: {}",
            bpfmap_client::code_name(e.code())
        );
    }

    // Many entries at once: sent in packed chunks over one stream.
    let entries = (10u32..20).map(|i| Entry::new(i.to_ne_bytes(), u64::from(i * i).to_ne_bytes()));
    let written = client.batch_update(&map, entries, Flag::Any).await?;
    println!("batch wrote {written} entries");

    // Dump: a stream of entries over the daemon's packed fast path.
    let (mut count, mut sum) = (0, 0u64);
    let mut dump = client.dump(&map).await?;
    while let Some(entry) = dump.try_next().await? {
        let value: u64 = from_bytes(&entry.value.into_single()?)?;
        count += 1;
        sum += value;
    }
    println!("dumped {count} entries, sum of values {sum}");

    client.delete_map(&map).await?;
    println!("deleted");
    Ok(())
}
