//! The delta policy (`docs/sync.md`, "Deltas"): what a push uploads, so that the upload
//! grows with the change and not with the database, while a device starting from
//! scratch still downloads a bounded number of files and bytes.
//!
//! Files form a leveled chain on a full snapshot, like the runs of an LSM tree. A
//! level-0 delta holds one push's rows and builds on the previous file. The
//! [`FANOUT`]-th file of a level is uploaded one level up instead: a level-`j` delta
//! holds every row changed since the newest file of level `j` or above (the merge of
//! the files it supersedes, plus the push), and builds on that file. Walking back from
//! the newest file, a new device so meets at most `FANOUT - 1` files per level before
//! the full snapshot. A full snapshot is uploaded when the levels are used up, or when
//! the deltas on the path a new device walks would exceed half the database.
//!
//! The chain's shape travels in every file's `meta` (and the local `meta` holds the
//! shape of the local version): `chain_start`, `chain_length` (files on the path after
//! the full snapshot), and per level `level_anchor:<j>`, `level_count:<j>`,
//! `level_bytes:<j>`, plus `path:<seq>` = level for every file on the path.

use rusqlite::Connection;

use crate::error::Result;
use crate::store::schema;

/// Files of one level before the next file goes one level up.
pub const FANOUT: u32 = 8;
/// Levels of deltas (0 to `LEVELS - 1`); past them a push uploads a full snapshot.
pub const LEVELS: usize = 5;
/// The level recorded in `path:<seq>` for the full snapshot.
const FULL: i64 = LEVELS as i64;
/// The deltas on the path may add up to this fraction of the database (numerator over
/// denominator), or to [`PATH_FLOOR`] for a small one, before a full snapshot replaces
/// them: a new device downloads at most 1.5 times the database, or that much more.
const PATH_FRACTION: (u64, u64) = (1, 2);
/// Deltas on the path never force a full snapshot below this many bytes: for a database
/// of a few pages a delta is as large as the database itself.
const PATH_FLOOR: u64 = 128 << 10;

/// What the next push uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Full,
    /// A delta of `level` holding the rows changed since version `base`.
    Delta {
        level: usize,
        base: u64,
    },
}

/// The shape of the chain the local version belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The full snapshot the chain starts from.
    pub start: u64,
    /// `anchors[j]` (j ≥ 1): the newest file of level `j` or above.
    anchors: [u64; LEVELS],
    /// Files of each level on the path since the anchor one level up.
    counts: [u32; LEVELS],
    /// Their bytes (0 when a file of an older charm-kv left them unknown).
    bytes: [u64; LEVELS],
    /// The files of the path, ascending, with their levels; `None` for chains written
    /// by an older charm-kv (then nothing may be assumed about the files between).
    path: Option<Vec<(u64, i64)>>,
}

impl Shape {
    /// The shape of a chain that starts with the full snapshot `seq` of `size` bytes.
    pub fn full(seq: u64) -> Shape {
        Shape {
            start: seq,
            anchors: [seq; LEVELS],
            counts: [0; LEVELS],
            bytes: [0; LEVELS],
            path: Some(vec![(seq, FULL)]),
        }
    }

    /// The shape in the `meta` table of `conn`; `None` when it has no chain (never
    /// synced, or restored from legacy backups).
    pub fn read(conn: &Connection) -> Result<Option<Shape>> {
        let Some(start) = schema::meta_get(conn, schema::META_CHAIN_START)? else {
            return Ok(None);
        };
        let start = start.max(0) as u64;
        let mut shape = Shape::full(start);
        let leveled = schema::meta_get(conn, &count_name(0))?.is_some();
        if !leveled {
            // A chain of an older charm-kv: all of its deltas are level 0.
            let length = schema::meta_get(conn, schema::META_CHAIN_LENGTH)?.unwrap_or(0);
            shape.counts[0] = length.clamp(0, i64::from(u32::MAX)) as u32;
            shape.path = None;
            return Ok(Some(shape));
        }
        for level in 0..LEVELS {
            if level > 0 {
                let anchor = schema::meta_get(conn, &anchor_name(level))?.unwrap_or(0);
                shape.anchors[level] = (anchor.max(0) as u64).max(start);
            }
            let count = schema::meta_get(conn, &count_name(level))?.unwrap_or(0);
            shape.counts[level] = count.clamp(0, i64::from(u32::MAX)) as u32;
            let bytes = schema::meta_get(conn, &bytes_name(level))?.unwrap_or(0);
            shape.bytes[level] = bytes.max(0) as u64;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT name, value FROM meta WHERE name >= 'path:' AND name < 'path;'",
        )?;
        let mut path = Vec::new();
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (name, level) = row?;
            if let Ok(seq) = name["path:".len()..].parse::<u64>() {
                path.push((seq, level));
            }
        }
        path.sort_unstable();
        // A delta of an older charm-kv carries its writer's `meta` unchanged: the path
        // then lacks that very file, and the files between are unknown.
        let version = schema::meta_get(conn, schema::META_MAX_VERSION)?.unwrap_or(0);
        let own = path.iter().any(|&(seq, _)| seq as i64 == version);
        shape.path = own.then_some(path);
        Ok(Some(shape))
    }

    /// Files on the path after the full snapshot.
    pub fn length(&self) -> u32 {
        self.counts.iter().sum()
    }

    /// The level the next push goes to: the lowest one not full (`None`: none is).
    fn next_level(&self) -> Option<usize> {
        (0..LEVELS).find(|&level| self.counts[level] + 1 < FANOUT)
    }

    /// What the next push uploads, on local version `base`. `changes_since`: the
    /// version from which this device knows every changed row (`sync_changes`);
    /// `listed`: the files on the server.
    pub fn plan(&self, base: u64, changes_since: i64, listed: &[u64]) -> Plan {
        let Some(level) = self.next_level() else {
            return Plan::Full;
        };
        let from = if level == 0 {
            base
        } else {
            self.anchors[level]
        };
        if level > 0 && (from as i64) < changes_since {
            return Plan::Full;
        }
        // The path's files must all be on the server: the full snapshot, the base, and
        // at least as many files between them as the path has.
        let present = listed
            .iter()
            .filter(|&&s| (self.start..=base).contains(&s))
            .count();
        let complete = listed.contains(&self.start)
            && listed.contains(&base)
            && listed.contains(&from)
            && present > self.length() as usize
            && self
                .path
                .as_ref()
                .is_none_or(|path| path.iter().all(|(seq, _)| listed.contains(seq)));
        if !complete || base == 0 {
            return Plan::Full;
        }
        Plan::Delta { level, base: from }
    }

    /// Whether a delta of `size` bytes at `level` keeps the path within its share of a
    /// database of `database_bytes`.
    pub fn fits(&self, level: usize, size: u64, database_bytes: u64) -> bool {
        let path: u64 = self.bytes[level..].iter().sum::<u64>() + size;
        path <= PATH_FLOOR
            || path.saturating_mul(PATH_FRACTION.1)
                <= database_bytes.saturating_mul(PATH_FRACTION.0)
    }

    /// The versions a delta at `level` made on this chain also applies to, besides its
    /// base: the files of the levels below (which it supersedes). It holds every row
    /// changed since its base, so on any version of its own lineage it brings the
    /// same result; a device that followed each push applies it directly instead of
    /// walking back to the full snapshot. Empty when the path is unknown.
    pub fn merged(&self, level: usize) -> Vec<u64> {
        self.path
            .iter()
            .flatten()
            .filter(|&&(_, l)| l < level as i64)
            .map(|&(seq, _)| seq)
            .collect()
    }

    /// The shape after a delta of `size` bytes at `level` was uploaded as `seq`.
    pub fn after_delta(&self, seq: u64, level: usize, size: u64) -> Shape {
        let mut next = self.clone();
        for lower in 0..level {
            next.counts[lower] = 0;
            next.bytes[lower] = 0;
        }
        for anchor in next.anchors.iter_mut().take(level + 1).skip(1) {
            *anchor = seq;
        }
        next.counts[level] += 1;
        next.bytes[level] += size;
        if let Some(path) = &mut next.path {
            // The files below `level` are superseded by the new one.
            path.retain(|&(_, l)| l >= level as i64);
            path.push((seq, level as i64));
        }
        next
    }

    /// The files a device walking this chain may read, if known.
    pub fn files(&self) -> Option<Vec<u64>> {
        self.path
            .as_ref()
            .map(|path| path.iter().map(|&(seq, _)| seq).collect())
    }

    /// Replaces the chain rows of the `meta` table of `conn` with this shape.
    pub fn write(&self, conn: &Connection) -> Result<()> {
        conn.execute(
            "DELETE FROM meta WHERE (name >= 'level_' AND name < 'level`') \
             OR (name >= 'path:' AND name < 'path;') OR (name >= 'merged:' AND name < 'merged;')",
            [],
        )?;
        schema::meta_set(conn, schema::META_CHAIN_START, self.start as i64)?;
        schema::meta_set(conn, schema::META_CHAIN_LENGTH, i64::from(self.length()))?;
        for level in 0..LEVELS {
            if level > 0 {
                schema::meta_set(conn, &anchor_name(level), self.anchors[level] as i64)?;
            }
            schema::meta_set(conn, &count_name(level), i64::from(self.counts[level]))?;
            schema::meta_set(conn, &bytes_name(level), self.bytes[level] as i64)?;
        }
        for &(seq, level) in self.path.iter().flatten() {
            schema::meta_set(conn, &format!("path:{seq}"), level)?;
        }
        Ok(())
    }
}

/// Writes the `merged:<seq>` rows of a delta file (see [`Shape::merged`]); only the
/// file carries them, never a local database.
pub fn write_merged(conn: &Connection, merged: &[u64]) -> Result<()> {
    for seq in merged {
        schema::meta_set(conn, &format!("merged:{seq}"), 1)?;
    }
    Ok(())
}

/// The `merged:<seq>` rows of a file's `meta`.
pub fn read_merged(conn: &Connection) -> Result<Vec<u64>> {
    let mut stmt =
        conn.prepare("SELECT name FROM meta WHERE name >= 'merged:' AND name < 'merged;'")?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut merged = Vec::new();
    for name in names {
        if let Ok(seq) = name?["merged:".len()..].parse::<u64>() {
            merged.push(seq);
        }
    }
    Ok(merged)
}

fn anchor_name(level: usize) -> String {
    format!("level_anchor:{level}")
}

fn count_name(level: usize) -> String {
    format!("level_count:{level}")
}

fn bytes_name(level: usize) -> String {
    format!("level_bytes:{level}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(shape: &Shape, seq: u64, listed: &mut Vec<u64>) -> (Plan, Shape) {
        let plan = shape.plan(seq - 1, 0, listed);
        listed.push(seq);
        let next = match plan {
            Plan::Full => Shape::full(seq),
            Plan::Delta { level, .. } => shape.after_delta(seq, level, 100),
        };
        (plan, next)
    }

    #[test]
    fn the_path_holds_at_most_fanout_minus_one_files_per_level() {
        let mut listed = vec![1];
        let mut shape = Shape::full(1);
        let mut levels = [0u32; LEVELS];
        for seq in 2..=2000 {
            let (plan, next) = push(&shape, seq, &mut listed);
            match plan {
                Plan::Delta { level, base } => {
                    levels[level] += 1;
                    if level == 0 {
                        assert_eq!(base, seq - 1);
                    } else {
                        assert!(base < seq - 1, "level {level} builds further back");
                    }
                }
                Plan::Full => panic!("no full snapshot needed in 2000 small pushes"),
            }
            shape = next;
            let path = shape.files().unwrap();
            assert!(path.len() <= 1 + (FANOUT as usize - 1) * LEVELS, "{path:?}");
            assert_eq!(path.len() as u32, shape.length() + 1);
            assert_eq!(path[0], 1, "starts at the full snapshot");
        }
        // One push in FANOUT goes one level up.
        assert!(
            levels[1] > 0 && levels[2] > 0 && levels[3] > 0,
            "{levels:?}"
        );
        assert_eq!(levels.iter().sum::<u32>(), 1999);
    }

    #[test]
    fn a_missing_path_file_or_an_incomplete_change_log_means_a_full_snapshot() {
        let mut listed = vec![1];
        let mut shape = Shape::full(1);
        for seq in 2..=8 {
            shape = push(&shape, seq, &mut listed).1;
        }
        assert_eq!(shape.plan(8, 0, &listed), Plan::Delta { level: 1, base: 1 });
        assert_eq!(
            shape.plan(8, 5, &listed),
            Plan::Full,
            "changes known only since 5"
        );
        listed.retain(|&s| s != 4);
        assert_eq!(shape.plan(8, 0, &listed), Plan::Full);
    }

    #[test]
    fn deltas_past_half_the_database_make_a_full_snapshot() {
        let mib = 1 << 20;
        let shape = Shape::full(1).after_delta(2, 0, 400 << 10);
        assert!(shape.fits(0, 112 << 10, mib), "exactly half");
        assert!(!shape.fits(0, (112 << 10) + 1, mib));
        // A level-1 delta supersedes the level-0 files: their bytes no longer count.
        assert!(shape.fits(1, 500 << 10, mib));
        // A small database: up to the floor, whatever its size.
        assert!(shape.fits(1, PATH_FLOOR, 10_000));
        assert!(!shape.fits(0, PATH_FLOOR, 10_000));
    }

    #[test]
    fn the_shape_survives_meta() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute(schema::CREATE_META, []).unwrap();
        let mut listed = vec![1];
        let mut shape = Shape::full(1);
        for seq in 2..=30 {
            shape = push(&shape, seq, &mut listed).1;
        }
        shape.write(&conn).unwrap();
        schema::meta_set(&conn, schema::META_MAX_VERSION, 30).unwrap();
        assert_eq!(Shape::read(&conn).unwrap(), Some(shape.clone()));
        Shape::full(31).write(&conn).unwrap();
        schema::meta_set(&conn, schema::META_MAX_VERSION, 31).unwrap();
        assert_eq!(Shape::read(&conn).unwrap(), Some(Shape::full(31)));
    }

    #[test]
    fn a_path_that_lacks_the_version_itself_is_unknown() {
        // What a delta of an older charm-kv looks like: our meta, its own version.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute(schema::CREATE_META, []).unwrap();
        Shape::full(1).after_delta(2, 0, 100).write(&conn).unwrap();
        schema::meta_set(&conn, schema::META_MAX_VERSION, 3).unwrap();
        let shape = Shape::read(&conn).unwrap().unwrap();
        assert_eq!(shape.files(), None, "files between 1 and 3 are unknown");
        assert_eq!(shape.start, 1);
    }
}
