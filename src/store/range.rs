//! Which keys a listing or an iteration covers: a prefix, a start key (seek) and a
//! direction, applied to the sorted plaintext key list by binary search.

use super::iter::Direction;

/// The keys of a listing or iteration ([`crate::Kv::keys_in`], [`crate::Kv::iter_in`]):
/// those starting with a prefix, from a start key on, in a direction. The default is
/// every key in ascending order.
///
/// As Badger's `IteratorOptions.Prefix` and `Iterator.Seek`: forward, the start key is
/// the first key returned if present (else the next larger one); in reverse, the first
/// key returned is the largest one not above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    prefix: Vec<u8>,
    start: Option<Vec<u8>>,
    direction: Direction,
}

impl KeyRange {
    /// Every key, ascending.
    pub fn all() -> KeyRange {
        KeyRange::default()
    }

    /// Only keys that start with `prefix` (the empty prefix: every key).
    pub fn prefix(mut self, prefix: impl AsRef<[u8]>) -> KeyRange {
        self.prefix = prefix.as_ref().to_vec();
        self
    }

    /// Start at `key` (forward: the first key `>= key`; reverse: the first `<= key`).
    pub fn start(mut self, key: impl AsRef<[u8]>) -> KeyRange {
        self.start = Some(key.as_ref().to_vec());
        self
    }

    /// In the given order.
    pub fn direction(mut self, direction: Direction) -> KeyRange {
        self.direction = direction;
        self
    }

    /// Descending order (the same as `direction(Direction::Reverse)`).
    pub fn reverse(self) -> KeyRange {
        self.direction(Direction::Reverse)
    }

    /// The order of the keys.
    pub fn order(&self) -> Direction {
        self.direction
    }

    /// Whether `key` is in the range (the order aside).
    pub fn contains(&self, key: &[u8]) -> bool {
        key.starts_with(&self.prefix)
            && match (&self.start, self.direction) {
                (None, _) => true,
                (Some(start), Direction::Forward) => key >= start.as_slice(),
                (Some(start), Direction::Reverse) => key <= start.as_slice(),
            }
    }

    /// The slice of the ascending `keys` in the range: two binary searches, so a
    /// prefix costs O(log n + matches) however many keys there are.
    pub fn select<'a>(&self, keys: &'a [Vec<u8>]) -> &'a [Vec<u8>] {
        let prefix = self.prefix.as_slice();
        let mut low = keys.partition_point(|k| k.as_slice() < prefix);
        // Past the first key with the prefix, those with it come first.
        let mut high = low + keys[low..].partition_point(|k| k.starts_with(prefix));
        match (&self.start, self.direction) {
            (None, _) => {}
            (Some(start), Direction::Forward) => {
                low = low.max(keys.partition_point(|k| k < start));
            }
            (Some(start), Direction::Reverse) => {
                high = high.min(keys.partition_point(|k| k <= start));
            }
        }
        &keys[low..high.max(low)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = list.iter().map(|k| k.to_vec()).collect();
        keys.sort();
        keys
    }

    /// Every selection agrees with filtering by `contains`, the obvious definition.
    #[test]
    fn binary_search_selects_what_filtering_selects() {
        let all = keys(&[
            b"a",
            b"ab",
            b"abc",
            b"abd",
            b"ac",
            b"b",
            b"\xff",
            b"\xff\xff",
            b"\xff\x00",
            b"\x00",
        ]);
        let prefixes: [&[u8]; 7] = [b"", b"a", b"ab", b"abz", b"\xff", b"\xff\xff", b"zz"];
        let starts: [Option<&[u8]>; 6] = [
            None,
            Some(b""),
            Some(b"ab"),
            Some(b"abc\x00"),
            Some(b"b"),
            Some(b"\xff\xff\xff"),
        ];
        for prefix in prefixes {
            for start in starts {
                for direction in [Direction::Forward, Direction::Reverse] {
                    let mut range = KeyRange::all().prefix(prefix).direction(direction);
                    if let Some(start) = start {
                        range = range.start(start);
                    }
                    let expected: Vec<Vec<u8>> =
                        all.iter().filter(|k| range.contains(k)).cloned().collect();
                    assert_eq!(range.select(&all), expected.as_slice(), "{range:?}");
                }
            }
        }
    }

    #[test]
    fn seek_finds_the_next_key_forward_and_the_previous_one_in_reverse() {
        let all = keys(&[b"a1", b"a3", b"a5", b"b1"]);
        let forward = KeyRange::all().prefix("a").start("a2");
        assert_eq!(forward.select(&all), &all[1..3]);
        let reverse = KeyRange::all().prefix("a").start("a4").reverse();
        assert_eq!(reverse.select(&all), &all[0..2]);
    }
}
