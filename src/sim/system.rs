//! The read-only menus of a simulated router: system resource, routerboard, interfaces,
//! and the rows that `ping` and `monitor-traffic` stream.
//!
//! Rows are built when asked for, from the router's index and version, so they cost no
//! memory per router. Values are plausible for a small ARM board, not measured.

use std::time::Duration;

use bytes::Bytes;

use super::model::Record;
use super::router::SimRouter;

/// Ethernet ports every simulated router has, `*1` to `*5`.
const ETHERNET_PORTS: u32 = 5;

pub(crate) fn resource(router: &SimRouter) -> Record {
    let version = &router.info.version;
    Record::default()
        .with("uptime", uptime(router.started.elapsed()))
        .with("version", format!("{version} (stable)"))
        .with("build-time", "2025-03-11 11:59:04")
        .with("factory-software", "6.45.9")
        .with("free-memory", "874512384")
        .with("total-memory", "1073741824")
        .with("cpu", "ARMv7")
        .with("cpu-count", "4")
        .with("cpu-frequency", "1400")
        .with("cpu-load", (router.index % 7 + 1).to_string())
        .with("free-hdd-space", "451215360")
        .with("total-hdd-space", "536870912")
        .with("architecture-name", "arm")
        .with("board-name", "RB4011iGS+")
        .with("platform", "MikroTik")
}

pub(crate) fn identity(name: Bytes) -> Record {
    Record::default().with("name", name)
}

pub(crate) fn routerboard(router: &SimRouter) -> Record {
    let version = &router.info.version;
    Record::default()
        .with("routerboard", "true")
        .with("board-name", "RB4011iGS+")
        .with("model", "RB4011iGS+")
        .with("serial-number", format!("SIM{:09X}", router.index))
        .with("firmware-type", "al2")
        .with("factory-firmware", "6.45.9")
        .with("current-firmware", version.clone())
        .with("upgrade-firmware", version.clone())
}

pub(crate) fn interfaces(router: &SimRouter) -> Vec<Record> {
    (1..=ETHERNET_PORTS)
        .map(|n| {
            let name = format!("ether{n}");
            Record::default()
                .with(".id", format!("*{n:X}"))
                .with("name", name.clone())
                .with("default-name", name)
                .with("type", "ether")
                .with("mtu", "1500")
                .with("actual-mtu", "1500")
                .with("mac-address", mac_address(router.index, n))
                .with("running", "true")
                .with("disabled", "false")
        })
        .collect()
}

pub(crate) fn has_interface(name: &[u8]) -> bool {
    (1..=ETHERNET_PORTS).any(|n| format!("ether{n}").as_bytes() == name)
}

/// One row of `monitor-traffic`; `tick` makes the numbers move between rows.
pub(crate) fn traffic(interface: &Bytes, tick: u64) -> Record {
    let packets = 100 + (tick * 37) % 900;
    Record::default()
        .with("name", interface.clone())
        .with("rx-packets-per-second", packets.to_string())
        .with("rx-bits-per-second", (packets * 8 * 512).to_string())
        .with("rx-drops-per-second", "0")
        .with("rx-errors-per-second", "0")
        .with("tx-packets-per-second", (packets / 2).to_string())
        .with("tx-bits-per-second", (packets * 4 * 512).to_string())
        .with("tx-drops-per-second", "0")
        .with("tx-errors-per-second", "0")
}

/// One row of `ping`: every probe is answered in 1 ms.
pub(crate) fn ping_reply(host: &Bytes, seq: u64) -> Record {
    Record::default()
        .with("seq", seq.to_string())
        .with("host", host.clone())
        .with("size", "56")
        .with("ttl", "64")
        .with("time", "1ms")
        .with("sent", (seq + 1).to_string())
        .with("received", (seq + 1).to_string())
        .with("packet-loss", "0")
        .with("min-rtt", "1ms")
        .with("avg-rtt", "1ms")
        .with("max-rtt", "1ms")
}

fn mac_address(index: usize, port: u32) -> String {
    let [_, a, b, c] = (index as u32).to_be_bytes();
    format!("4C:5E:{a:02X}:{b:02X}:{c:02X}:{port:02X}")
}

/// RouterOS duration style: `1w2d3h4m5s`, zero parts left out, `0s` for nothing.
pub(crate) fn uptime(elapsed: Duration) -> String {
    let mut left = elapsed.as_secs();
    let mut text = String::new();
    for (unit, seconds) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        let count = left / seconds;
        left %= seconds;
        if count > 0 {
            text.push_str(&format!("{count}{unit}"));
        }
    }
    if text.is_empty() {
        text.push_str("0s");
    }
    text
}

/// Reads a RouterOS time value: `100ms`, `2s`, `1m`, or plain seconds such as `0.5`.
pub(crate) fn parse_interval(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?;
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let seconds = number.parse::<f64>().ok()? * scale;
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_like_routeros() {
        assert_eq!(uptime(Duration::from_secs(0)), "0s");
        assert_eq!(uptime(Duration::from_secs(3_725)), "1h2m5s");
        assert_eq!(uptime(Duration::from_secs(694_861)), "1w1d1h1m1s");
    }

    #[test]
    fn intervals_accept_routeros_units_and_refuse_nonsense() {
        assert_eq!(parse_interval(b"100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_interval(b"2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_interval(b"0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_interval(b"1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_interval(b"0"), None);
        assert_eq!(parse_interval(b"fast"), None);
    }
}
