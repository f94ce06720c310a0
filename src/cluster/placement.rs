//! Where a router lives: its shard, and which live node owns a shard by rendezvous
//! (highest-random-weight) hashing. Pure functions, the same on every node, so nodes that
//! see the same live set agree on every owner without talking to each other; a node
//! joining or leaving moves only the shards it gains or loses.

use crate::store::RouterId;

/// The shard of a router. Router ids are sequential, so `id mod shards` spreads them
/// evenly and lets an operator tell a router's shard at a glance.
pub fn shard_of(router: RouterId, shards: u32) -> u32 {
    (router % u64::from(shards.max(1))) as u32
}

/// The node that should own `shard` among `nodes` (none when `nodes` is empty).
pub fn owner_of(shard: u32, nodes: &[String]) -> Option<&str> {
    nodes
        .iter()
        .max_by_key(|node| (weight(node, shard), node.as_str()))
        .map(String::as_str)
}

/// The shards `node` should own when `nodes` are alive (`node` among them).
pub fn desired(node: &str, nodes: &[String], shards: u32) -> Vec<u32> {
    (0..shards)
        .filter(|&s| owner_of(s, nodes) == Some(node))
        .collect()
}

/// A stable 64-bit weight of (node, shard): FNV-1a over the name, mixed with the shard
/// by a SplitMix64 finaliser so that consecutive shards get unrelated weights.
fn weight(node: &str, shard: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h ^ u64::from(shard).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// Every shard has exactly one owner, and the owners share the shards roughly evenly.
    #[test]
    fn shards_are_split_between_live_nodes() {
        let nodes = names(&["node-a", "node-b", "node-c"]);
        let mut total = 0;
        for n in &nodes {
            let mine = desired(n, &nodes, 256);
            assert!((50..=120).contains(&mine.len()), "{n} got {}", mine.len());
            total += mine.len();
        }
        assert_eq!(total, 256);
        assert_eq!(owner_of(0, &[]), None);
    }

    /// A node leaving moves only its own shards; one joining takes shards only from others
    /// and never reshuffles shards between the nodes that stay.
    #[test]
    fn membership_changes_move_only_the_changed_share() {
        let three = names(&["node-a", "node-b", "node-c"]);
        let two = names(&["node-a", "node-c"]);
        for s in 0..512 {
            let before = owner_of(s, &three).unwrap();
            let after = owner_of(s, &two).unwrap();
            if before != "node-b" {
                assert_eq!(before, after, "shard {s} moved between survivors");
            }
        }
        let four = names(&["node-a", "node-b", "node-c", "node-d"]);
        for s in 0..512 {
            let before = owner_of(s, &three).unwrap();
            let after = owner_of(s, &four).unwrap();
            assert!(
                after == before || after == "node-d",
                "shard {s}: {before} -> {after}"
            );
        }
    }

    #[test]
    fn order_of_the_live_list_does_not_matter() {
        let a = names(&["x", "y", "z"]);
        let b = names(&["z", "x", "y"]);
        for s in 0..64 {
            assert_eq!(owner_of(s, &a), owner_of(s, &b));
        }
        assert_eq!(shard_of(130, 64), 2);
    }
}
