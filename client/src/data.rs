//! Keys and values: [`Data`] going in, [`Value`] and [`Entry`] coming out, and [`Flag`].

use crate::error::Error;
use crate::proto;

/// A key or value sent to the daemon.
///
/// Usually built from bytes (`&[u8]`, `&[u8; N]`, `Vec<u8>`, `&Vec<u8>`,
/// [`bytes::Bytes`]); the daemon can also parse bpftool-style hex or store a number in host
/// byte order for you, and checks the size against the map's key or value size.
///
/// ```
/// use bpfmap_client::Data;
/// let a: Data = (&[1u8, 2][..]).into();
/// let b: Data = (&[1u8, 2]).into();
/// assert_eq!(a, b);
/// assert_eq!(Data::hex("01 02"), Data::Hex("01 02".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Exact bytes.
    Raw(bytes::Bytes),
    /// bpftool-style hex: `"c1 c2"`, `"c1c2"`, `"0xc1 0xc2"`, parsed by the daemon.
    Hex(String),
    /// An unsigned integer stored in host byte order in a 1, 2, 4 or 8 byte key or value.
    Number(u64),
    /// Typed JSON for maps whose key and value have BTF types (programs compiled with `-g`,
    /// maps created with [`CreateMap::key_type`](crate::CreateMap::key_type)), e.g.
    /// `{"saddr":16777343,"sport":53}`; the daemon checks every field.
    Json(String),
}

impl Data {
    /// Hex text for the daemon to parse.
    pub fn hex(text: impl Into<String>) -> Self {
        Data::Hex(text.into())
    }

    /// A number stored in host byte order (of the daemon's host).
    pub fn number(n: u64) -> Self {
        Data::Number(n)
    }

    /// Typed JSON text, laid out by the daemon from the map's BTF types.
    ///
    /// ```
    /// use bpfmap_client::Data;
    /// let key = Data::json(r#"{"pid": 42, "comm": "curl"}"#);
    /// assert!(matches!(key, Data::Json(_)));
    /// ```
    pub fn json(text: impl Into<String>) -> Self {
        Data::Json(text.into())
    }

    /// The wire form.
    pub fn to_proto(&self) -> proto::Data {
        use proto::data::Form;
        proto::Data {
            form: Some(match self {
                Data::Raw(b) => Form::Raw(b.clone()),
                Data::Hex(h) => Form::Hex(h.clone()),
                Data::Number(n) => Form::Number(*n),
                Data::Json(j) => Form::Json(j.clone()),
            }),
        }
    }
}

impl From<&[u8]> for Data {
    fn from(b: &[u8]) -> Self {
        Data::Raw(bytes::Bytes::copy_from_slice(b))
    }
}

impl<const N: usize> From<&[u8; N]> for Data {
    fn from(b: &[u8; N]) -> Self {
        Data::Raw(bytes::Bytes::copy_from_slice(b))
    }
}

impl<const N: usize> From<[u8; N]> for Data {
    fn from(b: [u8; N]) -> Self {
        Data::Raw(bytes::Bytes::copy_from_slice(&b))
    }
}

impl From<Vec<u8>> for Data {
    fn from(b: Vec<u8>) -> Self {
        Data::Raw(b.into())
    }
}

impl From<&Vec<u8>> for Data {
    fn from(b: &Vec<u8>) -> Self {
        Data::Raw(bytes::Bytes::copy_from_slice(b))
    }
}

impl From<bytes::Bytes> for Data {
    fn from(b: bytes::Bytes) -> Self {
        Data::Raw(b)
    }
}

impl From<&Data> for Data {
    fn from(d: &Data) -> Self {
        d.clone()
    }
}

/// Raw bytes out of a returned `Data` (the client always asks for `FORMAT_RAW`).
pub(crate) fn raw_of(data: Option<proto::Data>, what: &str) -> Result<Vec<u8>, Error> {
    use proto::data::Form;
    match data.and_then(|d| d.form) {
        Some(Form::Raw(b)) => Ok(b.to_vec()),
        None => Ok(Vec::new()),
        Some(other) => Err(Error::Protocol(format!(
            "{what} came as {other:?}, expected raw bytes"
        ))),
    }
}

/// A value read from a map: one value, or one per possible CPU for per-CPU maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// The value of an ordinary map.
    Single(Vec<u8>),
    /// Per-CPU maps: one value per possible CPU, index = CPU number.
    PerCpu(Vec<Vec<u8>>),
}

impl Value {
    /// The single value; an error for a per-CPU value.
    pub fn into_single(self) -> Result<Vec<u8>, Error> {
        match self {
            Value::Single(v) => Ok(v),
            Value::PerCpu(_) => Err(Error::InvalidInput(
                "the map is per-CPU: use the per-CPU method to get one value per CPU".into(),
            )),
        }
    }

    /// One value per CPU; an ordinary value becomes a list of one.
    pub fn into_per_cpu(self) -> Vec<Vec<u8>> {
        match self {
            Value::Single(v) => vec![v],
            Value::PerCpu(v) => v,
        }
    }

    /// True for a per-CPU value.
    pub fn is_per_cpu(&self) -> bool {
        matches!(self, Value::PerCpu(_))
    }

    pub(crate) fn from_parts(
        value: Option<proto::Data>,
        per_cpu: Vec<proto::Data>,
    ) -> Result<Self, Error> {
        if per_cpu.is_empty() {
            Ok(Value::Single(raw_of(value, "value")?))
        } else {
            per_cpu
                .into_iter()
                .map(|d| raw_of(Some(d), "per-CPU value"))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::PerCpu)
        }
    }
}

/// One key with its value, as [`dump`](crate::Client::dump) yields them and
/// [`batch_update`](crate::Client::batch_update) takes them.
///
/// For a per-CPU map, a [`Value::Single`] given to `batch_update` is written to every CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key bytes.
    pub key: Vec<u8>,
    /// The value bytes.
    pub value: Value,
}

impl Entry {
    /// An entry of an ordinary map.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Entry {
            key: key.into(),
            value: Value::Single(value.into()),
        }
    }

    /// An entry of a per-CPU map, one value per possible CPU.
    pub fn per_cpu(key: impl Into<Vec<u8>>, values: Vec<Vec<u8>>) -> Self {
        Entry {
            key: key.into(),
            value: Value::PerCpu(values),
        }
    }
}

/// Update semantics: the kernel's `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Flag {
    /// Create or replace.
    #[default]
    Any,
    /// Create only; `ALREADY_EXISTS` if the key is there.
    NoExist,
    /// Replace only; `NOT_FOUND` if the key is not there.
    Exist,
}

impl From<Flag> for proto::UpdateFlag {
    fn from(f: Flag) -> Self {
        match f {
            Flag::Any => proto::UpdateFlag::Any,
            Flag::NoExist => proto::UpdateFlag::Noexist,
            Flag::Exist => proto::UpdateFlag::Exist,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::data::Form;

    #[test]
    fn data_converts() {
        assert_eq!(
            Data::from(vec![1u8, 2]).to_proto().form,
            Some(Form::Raw(vec![1, 2].into()))
        );
        assert_eq!(Data::number(5).to_proto().form, Some(Form::Number(5)));
        assert_eq!(
            Data::hex("c1 c2").to_proto().form,
            Some(Form::Hex("c1 c2".into()))
        );
    }

    #[test]
    fn values_from_replies() {
        let raw = |b: &[u8]| proto::Data {
            form: Some(Form::Raw(b.to_vec().into())),
        };
        assert_eq!(
            Value::from_parts(Some(raw(&[1])), vec![]).ok(),
            Some(Value::Single(vec![1]))
        );
        assert_eq!(
            Value::from_parts(None, vec![raw(&[1]), raw(&[2])]).ok(),
            Some(Value::PerCpu(vec![vec![1], vec![2]]))
        );
        let hex = proto::Data {
            form: Some(Form::Hex("01".into())),
        };
        assert!(Value::from_parts(Some(hex), vec![]).is_err());
        assert!(Value::PerCpu(vec![]).into_single().is_err());
    }

    #[test]
    fn flags_map_to_the_wire() {
        assert_eq!(proto::UpdateFlag::from(Flag::Any) as i32, 0);
        assert_eq!(proto::UpdateFlag::from(Flag::NoExist) as i32, 1);
        assert_eq!(proto::UpdateFlag::from(Flag::Exist) as i32, 2);
    }
}
