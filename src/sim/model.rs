//! A router's mutable state: its identity and its IP addresses, with the subscribers that
//! `listen` for changes to them.
//!
//! Kept small on purpose (thousands of routers share one process): nothing is allocated
//! per router beyond the rows that exist.

use std::net::Ipv4Addr;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::request::Trap;
use super::system;

/// One item of a menu: named values in the order RouterOS prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Record {
    fields: Vec<(Bytes, Bytes)>,
}

impl Record {
    pub(crate) fn get(&self, name: &[u8]) -> Option<&Bytes> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Replaces the value of `name` where it stands, or appends it.
    pub(crate) fn set(&mut self, name: Bytes, value: Bytes) {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(field) => field.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// Appends a field; builds rows of constant names.
    pub(crate) fn with(mut self, name: &'static str, value: impl Into<Bytes>) -> Record {
        self.fields
            .push((Bytes::from_static(name.as_bytes()), value.into()));
        self
    }

    pub(crate) fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }
}

/// Arguments that `/ip/address/add` and `set` understand.
const ADDRESS_ARGS: [&[u8]; 5] = [
    b"address",
    b"network",
    b"interface",
    b"disabled",
    b"comment",
];

pub(crate) struct Model {
    identity: Bytes,
    addresses: Vec<Record>,
    /// Number of the next `/ip/address` id; ids are never reused, as on RouterOS.
    next_address: u32,
    /// Tasks streaming `/ip/address/listen` or `print =follow=`; dropped when they end.
    listeners: Vec<mpsc::UnboundedSender<Record>>,
}

impl Model {
    /// A router fresh from its default configuration: one address on ether1.
    pub(crate) fn new(index: usize) -> Model {
        let mut model = Model {
            identity: Bytes::from(format!("sim-{index}")),
            addresses: Vec::new(),
            next_address: 1,
            listeners: Vec::new(),
        };
        let defconf = [
            (
                Bytes::from_static(b"address"),
                Bytes::from_static(b"192.168.88.1/24"),
            ),
            (
                Bytes::from_static(b"interface"),
                Bytes::from_static(b"ether1"),
            ),
            (
                Bytes::from_static(b"comment"),
                Bytes::from_static(b"defconf"),
            ),
        ];
        model
            .add_address(&defconf)
            .expect("the default address is valid");
        model
    }

    pub(crate) fn identity(&self) -> &Bytes {
        &self.identity
    }

    pub(crate) fn set_identity(&mut self, name: Bytes) {
        self.identity = name;
    }

    pub(crate) fn addresses(&self) -> &[Record] {
        &self.addresses
    }

    /// Adds an address and returns its id, e.g. `*2`.
    pub(crate) fn add_address(&mut self, args: &[(Bytes, Bytes)]) -> Result<Bytes, Trap> {
        check_arguments(args)?;
        let given = |name: &[u8]| args.iter().any(|(n, _)| n == name);
        if !given(b"address") {
            return Err(Trap::bad_argument(
                "missing value(s) of argument(s) address",
            ));
        }
        if !given(b"interface") {
            return Err(Trap::bad_argument(
                "missing value(s) of argument(s) interface",
            ));
        }
        let id = Bytes::from(format!("*{:X}", self.next_address));
        let record = Record::default()
            .with(".id", id.clone())
            .with("address", "")
            .with("network", "")
            .with("interface", "")
            .with("actual-interface", "")
            .with("invalid", "false")
            .with("dynamic", "false")
            .with("disabled", "false");
        let record = apply_arguments(record, args)?;
        self.next_address += 1;
        self.addresses.push(record.clone());
        self.notify(record);
        Ok(id)
    }

    /// Changes the address `id`; nothing changes when an argument is wrong.
    pub(crate) fn set_address(&mut self, id: &[u8], args: &[(Bytes, Bytes)]) -> Result<(), Trap> {
        check_arguments(args)?;
        let at = self.position(id)?;
        let record = apply_arguments(self.addresses[at].clone(), args)?;
        self.addresses[at] = record.clone();
        self.notify(record);
        Ok(())
    }

    /// Removes every listed address, or none when one of them does not exist.
    pub(crate) fn remove_addresses(&mut self, ids: &[&[u8]]) -> Result<(), Trap> {
        for id in ids {
            self.position(id)?;
        }
        for id in ids {
            let at = self.position(id)?;
            let removed = self.addresses.remove(at);
            let id = removed.get(b".id").cloned().unwrap_or_default();
            self.notify(Record::default().with(".id", id).with(".dead", "true"));
        }
        Ok(())
    }

    /// A stream of address changes, registered under the same lock as a snapshot taken
    /// with it, so a follower misses nothing in between.
    pub(crate) fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Record> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.listeners.retain(|l| !l.is_closed());
        self.listeners.push(tx);
        rx
    }

    fn position(&self, id: &[u8]) -> Result<usize, Trap> {
        self.addresses
            .iter()
            .position(|r| r.get(b".id").is_some_and(|v| v.as_ref() == id))
            .ok_or_else(|| Trap::missing("no such item"))
    }

    fn notify(&mut self, record: Record) {
        self.listeners.retain(|l| l.send(record.clone()).is_ok());
    }
}

fn check_arguments(args: &[(Bytes, Bytes)]) -> Result<(), Trap> {
    let known = |name: &[u8]| name.starts_with(b".") || name == b"numbers";
    match args
        .iter()
        .find(|(n, _)| !known(n) && !ADDRESS_ARGS.contains(&n.as_ref()))
    {
        Some((name, _)) => {
            let mut message = b"unknown parameter ".to_vec();
            message.extend_from_slice(name);
            Err(Trap::bad_argument(message))
        }
        None => Ok(()),
    }
}

/// Applies the known arguments to `record`, validating them like RouterOS would.
fn apply_arguments(mut record: Record, args: &[(Bytes, Bytes)]) -> Result<Record, Trap> {
    for (name, value) in args
        .iter()
        .filter(|(n, _)| ADDRESS_ARGS.contains(&n.as_ref()))
    {
        match name.as_ref() {
            b"address" => {
                let network = network_of(value)
                    .ok_or_else(|| Trap::bad_argument("invalid value for argument address"))?;
                record.set(name.clone(), value.clone());
                record.set(
                    Bytes::from_static(b"network"),
                    Bytes::from(network.to_string()),
                );
            }
            b"interface" => {
                if !system::has_interface(value) {
                    return Err(Trap::bad_argument(
                        "input does not match any value of interface",
                    ));
                }
                record.set(name.clone(), value.clone());
                record.set(Bytes::from_static(b"actual-interface"), value.clone());
            }
            b"disabled" => {
                let flag = match value.as_ref() {
                    b"yes" | b"true" => "true",
                    b"no" | b"false" => "false",
                    _ => return Err(Trap::bad_argument("invalid value for argument disabled")),
                };
                record.set(name.clone(), Bytes::from_static(flag.as_bytes()));
            }
            _ => record.set(name.clone(), value.clone()),
        }
    }
    // An explicit network wins over the computed one, as on RouterOS.
    if let Some((_, network)) = args.iter().rev().find(|(n, _)| n.as_ref() == b"network") {
        record.set(Bytes::from_static(b"network"), network.clone());
    }
    Ok(record)
}

/// The network of `a.b.c.d/len` (or a bare address, /32).
fn network_of(value: &[u8]) -> Option<Ipv4Addr> {
    let text = std::str::from_utf8(value).ok()?;
    let (ip, len) = match text.split_once('/') {
        Some((ip, len)) => (ip, len.parse::<u32>().ok().filter(|l| *l <= 32)?),
        None => (text, 32),
    };
    let ip: Ipv4Addr = ip.parse().ok()?;
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Some(Ipv4Addr::from(u32::from(ip) & mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&'static str, &'static [u8])]) -> Vec<(Bytes, Bytes)> {
        pairs
            .iter()
            .map(|(n, v)| (Bytes::from_static(n.as_bytes()), Bytes::from_static(v)))
            .collect()
    }

    #[test]
    fn networks_are_computed_from_the_prefix_length() {
        assert_eq!(network_of(b"10.1.2.3/8"), Some(Ipv4Addr::new(10, 0, 0, 0)));
        assert_eq!(network_of(b"10.1.2.3/0"), Some(Ipv4Addr::new(0, 0, 0, 0)));
        assert_eq!(network_of(b"10.1.2.3"), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(network_of(b"10.1.2.3/33"), None);
        assert_eq!(network_of(b"ten/8"), None);
    }

    #[test]
    fn ids_are_never_reused_and_a_failed_remove_changes_nothing() {
        let mut model = Model::new(0);
        let a = [("address", &b"10.0.0.1/24"[..]), ("interface", b"ether2")];
        let id = model.add_address(&args(&a)).unwrap();
        assert_eq!(id.as_ref(), b"*2");
        assert_eq!(
            model.remove_addresses(&[b"*2", b"*9"]),
            Err(Trap::missing("no such item"))
        );
        assert_eq!(model.addresses().len(), 2);
        model.remove_addresses(&[b"*2"]).unwrap();
        assert_eq!(model.add_address(&args(&a)).unwrap().as_ref(), b"*3");
    }

    #[test]
    fn a_bad_argument_leaves_the_record_unchanged() {
        let mut model = Model::new(0);
        let bad = args(&[("comment", b"x"), ("interface", b"ether9")]);
        assert!(model.set_address(b"*1", &bad).is_err());
        assert_eq!(
            model.addresses()[0].get(b"comment").unwrap().as_ref(),
            b"defconf"
        );
        let unknown = args(&[("colour", b"red")]);
        let err = model.set_address(b"*1", &unknown).unwrap_err();
        assert_eq!(err.message.as_ref(), b"unknown parameter colour");
    }
}
