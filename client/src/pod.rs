//! Plain-old-data helpers: keys and values as Rust types ([`bytemuck::Pod`]) instead of bytes.
//!
//! Integers, arrays of them and `#[repr(C)]` structs deriving `Pod` go in and out in the
//! daemon host's byte order, exactly as a BPF program sees them.

use bytemuck::Pod;

use crate::client::Client;
use crate::data::{Data, Flag};
use crate::error::Error;
use crate::mapref::MapRef;

/// Copies `bytes` into a `T`, checking the size.
///
/// ```
/// let v: u32 = bpfmap_client::from_bytes(&7u32.to_ne_bytes()).unwrap();
/// assert_eq!(v, 7);
/// assert!(bpfmap_client::from_bytes::<u64>(&[0; 4]).is_err());
/// ```
pub fn from_bytes<T: Pod>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.len() != std::mem::size_of::<T>() {
        return Err(Error::InvalidInput(format!(
            "got {} bytes, {} is {} bytes",
            bytes.len(),
            std::any::type_name::<T>(),
            std::mem::size_of::<T>()
        )));
    }
    Ok(bytemuck::pod_read_unaligned(bytes))
}

fn pod<T: Pod>(v: &T) -> Data {
    Data::from(bytemuck::bytes_of(v))
}

impl Client {
    /// [`lookup`](Client::lookup) with a typed key and value.
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// let map = bpfmap_client::MapRef::name("counters");
    /// let n: u64 = client.lookup_pod::<u32, u64>(&map, &1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn lookup_pod<K: Pod, V: Pod>(
        &self,
        map: impl Into<MapRef>,
        key: &K,
    ) -> Result<V, Error> {
        from_bytes(&self.lookup(map, pod(key)).await?)
    }

    /// [`update`](Client::update) with a typed key and value.
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use bpfmap_client::{Flag, MapRef};
    /// let map = MapRef::name("counters");
    /// client.update_pod::<u32, u64>(&map, &1, &42, Flag::Any).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_pod<K: Pod, V: Pod>(
        &self,
        map: impl Into<MapRef>,
        key: &K,
        value: &V,
        flag: Flag,
    ) -> Result<(), Error> {
        self.update(map, pod(key), pod(value), flag).await
    }

    /// [`delete`](Client::delete) with a typed key.
    pub async fn delete_pod<K: Pod>(&self, map: impl Into<MapRef>, key: &K) -> Result<(), Error> {
        self.delete(map, pod(key)).await
    }

    /// [`lookup_per_cpu`](Client::lookup_per_cpu) with typed key and values: one `V`
    /// per possible CPU, index = CPU number.
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// let per_cpu: Vec<u64> = client.lookup_per_cpu_pod::<u32, u64>(bpfmap_client::MapRef::name("pkts"), &0).await?;
    /// let total: u64 = per_cpu.iter().sum();
    /// # Ok(()) }
    /// ```
    pub async fn lookup_per_cpu_pod<K: Pod, V: Pod>(
        &self,
        map: impl Into<MapRef>,
        key: &K,
    ) -> Result<Vec<V>, Error> {
        self.lookup_per_cpu(map, pod(key))
            .await?
            .iter()
            .map(|v| from_bytes(v))
            .collect()
    }

    /// [`update_per_cpu`](Client::update_per_cpu) with a typed key and one `V` per CPU.
    pub async fn update_per_cpu_pod<K: Pod, V: Pod>(
        &self,
        map: impl Into<MapRef>,
        key: &K,
        values: &[V],
        flag: Flag,
    ) -> Result<(), Error> {
        self.update_per_cpu(map, pod(key), values.iter().map(pod), flag)
            .await
    }

    /// [`push`](Client::push) a typed value.
    pub async fn push_pod<V: Pod>(&self, map: impl Into<MapRef>, value: &V) -> Result<(), Error> {
        self.push(map, pod(value)).await
    }

    /// [`pop`](Client::pop) a typed value.
    pub async fn pop_pod<V: Pod>(&self, map: impl Into<MapRef>) -> Result<V, Error> {
        from_bytes(&self.pop(map).await?)
    }

    /// [`peek`](Client::peek) at a typed value.
    pub async fn peek_pod<V: Pod>(&self, map: impl Into<MapRef>) -> Result<V, Error> {
        from_bytes(&self.peek(map).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_host_order() {
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Zeroable, bytemuck::Pod)]
        #[repr(C)]
        struct Pair {
            a: u32,
            b: u32,
        }
        let p = Pair { a: 1, b: 2 };
        assert_eq!(from_bytes::<Pair>(bytemuck::bytes_of(&p)).ok(), Some(p));
        let mut expect = 1u32.to_ne_bytes().to_vec();
        expect.extend(2u32.to_ne_bytes());
        assert_eq!(pod(&p), Data::from(expect));
        let err = from_bytes::<u16>(&[1, 2, 3]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("got 3 bytes, u16 is 2 bytes"));
    }
}
