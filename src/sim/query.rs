//! Print filters: query words evaluated on a stack, and `.proplist` projection.
//!
//! Each word pushes one truth value (`?name=x`, `?=name=x`, `?<name=x`, `?>name=x`,
//! `?name`, `?-name`); `?#` words combine them (`|` or, `&` and, `!` not, `.` copy the
//! top). A row matches when every value left on the stack is true. Pushing by index
//! (`?#0`..`?#9`) is not supported: such a filter matches nothing.

use std::cmp::Ordering;

use bytes::Bytes;

use super::model::Record;

#[derive(Debug, PartialEq, Eq)]
enum Word {
    Has(Bytes),
    Lacks(Bytes),
    Equals(Bytes, Bytes),
    Less(Bytes, Bytes),
    Greater(Bytes, Bytes),
    Operators(Bytes),
}

/// A parsed set of query words; the empty filter matches every row.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    words: Vec<Word>,
}

impl Filter {
    /// Parses query words given without their leading `?`.
    pub(crate) fn parse(queries: &[Bytes]) -> Filter {
        Filter {
            words: queries.iter().map(|q| parse_word(q.clone())).collect(),
        }
    }

    pub(crate) fn matches(&self, record: &Record) -> bool {
        let mut stack: Vec<bool> = Vec::with_capacity(self.words.len());
        for word in &self.words {
            let value = match word {
                Word::Has(name) => record.get(name).is_some(),
                Word::Lacks(name) => record.get(name).is_none(),
                Word::Equals(name, value) => record.get(name) == Some(value),
                Word::Less(name, value) => compare(record.get(name), value) == Some(Ordering::Less),
                Word::Greater(name, value) => {
                    compare(record.get(name), value) == Some(Ordering::Greater)
                }
                Word::Operators(ops) => {
                    if !apply_operators(&mut stack, ops) {
                        return false;
                    }
                    continue;
                }
            };
            stack.push(value);
        }
        stack.iter().all(|v| *v)
    }
}

fn parse_word(word: Bytes) -> Word {
    let split = |rest: Bytes| match rest.iter().position(|&b| b == b'=') {
        Some(at) => (rest.slice(..at), rest.slice(at + 1..)),
        None => (rest, Bytes::new()),
    };
    match word.first() {
        Some(b'#') => Word::Operators(word.slice(1..)),
        Some(b'-') => Word::Lacks(word.slice(1..)),
        Some(b'=') => {
            let (name, value) = split(word.slice(1..));
            Word::Equals(name, value)
        }
        Some(b'<') => {
            let (name, value) = split(word.slice(1..));
            Word::Less(name, value)
        }
        Some(b'>') => {
            let (name, value) = split(word.slice(1..));
            Word::Greater(name, value)
        }
        _ if word.contains(&b'=') => {
            let (name, value) = split(word);
            Word::Equals(name, value)
        }
        _ => Word::Has(word),
    }
}

/// Runs `?#` operators; false when the stack runs dry or an operator is unknown.
fn apply_operators(stack: &mut Vec<bool>, ops: &[u8]) -> bool {
    for op in ops {
        match op {
            b'|' | b'&' => {
                let (Some(a), Some(b)) = (stack.pop(), stack.pop()) else {
                    return false;
                };
                stack.push(if *op == b'|' { a || b } else { a && b });
            }
            b'!' => match stack.pop() {
                Some(a) => stack.push(!a),
                None => return false,
            },
            b'.' => match stack.last() {
                Some(&a) => stack.push(a),
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// Compares numbers as numbers (ids such as `*1F` too), everything else byte by byte; an
/// absent value compares with nothing.
fn compare(have: Option<&Bytes>, want: &[u8]) -> Option<Ordering> {
    let have = have?;
    match (number(have), number(want)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => Some(have.as_ref().cmp(want)),
    }
}

fn number(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    match text.strip_prefix('*') {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The fields of `record` named in a `.proplist` value (`a,b,c`), in record order; all of
/// them without a proplist.
pub(crate) fn project<'a>(
    record: &'a Record,
    proplist: Option<&'a Bytes>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    record.fields().filter(move |(name, _)| match proplist {
        Some(list) => list.split(|&b| b == b',').any(|wanted| wanted == *name),
        None => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(words: &[&'static str]) -> Filter {
        let words: Vec<Bytes> = words
            .iter()
            .map(|w| Bytes::from_static(w.as_bytes()))
            .collect();
        Filter::parse(&words)
    }

    fn ether(n: u32, mtu: &'static str) -> Record {
        Record::default()
            .with(".id", format!("*{n:X}"))
            .with("name", format!("ether{n}"))
            .with("mtu", mtu)
    }

    #[test]
    fn comparisons_and_presence_select_the_right_rows() {
        let low = ether(1, "1400");
        let high = ether(12, "9000");
        assert!(filter(&["name=ether1"]).matches(&low));
        assert!(filter(&["=name=ether1"]).matches(&low));
        assert!(!filter(&["name=ether1"]).matches(&high));
        assert!(filter(&[">mtu=1500"]).matches(&high));
        assert!(!filter(&[">mtu=1500"]).matches(&low));
        assert!(filter(&["<.id=*B"]).matches(&low));
        assert!(!filter(&["<.id=*B"]).matches(&high));
        assert!(filter(&["mtu"]).matches(&low));
        assert!(!filter(&["-mtu"]).matches(&low));
        assert!(filter(&["-comment"]).matches(&low));
    }

    #[test]
    fn stack_operators_combine_the_pushed_values() {
        let low = ether(1, "1400");
        let high = ether(12, "9000");
        let either = filter(&["name=ether1", "name=ether12", "#|"]);
        assert!(either.matches(&low) && either.matches(&high));
        let neither = filter(&["name=ether1", "#!"]);
        assert!(!neither.matches(&low) && neither.matches(&high));
        assert!(
            !filter(&["#|"]).matches(&low),
            "an empty stack matches nothing"
        );
    }

    #[test]
    fn proplist_keeps_only_the_named_fields() {
        let record = ether(1, "1400");
        let list = Bytes::from_static(b"mtu,.id");
        let kept: Vec<_> = project(&record, Some(&list))
            .map(|(n, _)| n.to_vec())
            .collect();
        assert_eq!(kept, vec![b".id".to_vec(), b"mtu".to_vec()]);
        assert_eq!(project(&record, None).count(), 3);
    }
}
