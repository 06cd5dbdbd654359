//! How `verify` reports a consume queue's damaged entries: by fault, as ranges of queue
//! offsets with exact counts, so that 1,000 bad entries are one line.

/// What is wrong with a consume-queue entry (see [`QueueDamage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EntryFault {
    /// A pre-blank placeholder ([`QueueEntry::PRE_BLANK`]) after the queue's first real entry:
    /// an entry lost and padded over; pulls skip the offset.
    Placeholder,
    /// A never-written (all-zero) entry, or a stretch missing from a short file, before the
    /// queue's last entry: recovery ends the queue there.
    Hole,
    /// Neither a real entry nor a placeholder (negative commit-log offset, size 0 or less)
    /// before the queue's last entry.
    Invalid,
    /// Garbage after the queue's last entry.
    TrailingInvalid,
    /// Points into deleted segments after entries that point at live records.
    Deleted,
    /// Points past the end of the commit log's valid records.
    PastLogEnd,
    /// No whole record starts where it points.
    NotARecord,
    /// Points at a record of another topic or queue.
    OtherQueue,
    /// Points at a record of this queue stored at another queue offset.
    WrongOffset,
    /// Its size is not the record's.
    WrongSize,
    /// Its tags hash code is not the record's.
    WrongTags,
}

impl EntryFault {
    /// A short stable name (the JSON of `rmq store verify`).
    pub fn name(self) -> &'static str {
        match self {
            EntryFault::Placeholder => "placeholder",
            EntryFault::Hole => "hole",
            EntryFault::Invalid => "invalid",
            EntryFault::TrailingInvalid => "trailingInvalid",
            EntryFault::Deleted => "deleted",
            EntryFault::PastLogEnd => "pastLogEnd",
            EntryFault::NotARecord => "notARecord",
            EntryFault::OtherQueue => "otherQueue",
            EntryFault::WrongOffset => "wrongOffset",
            EntryFault::WrongSize => "wrongSize",
            EntryFault::WrongTags => "wrongTags",
        }
    }

    /// What it means, for a reader.
    pub fn what(self) -> &'static str {
        match self {
            EntryFault::Placeholder => {
                "pre-blank placeholders after the queue's first real entry (entries lost; pulls \
                 skip these offsets)"
            }
            EntryFault::Hole => {
                "never-written (zero) entries before the queue's last entry (a hole: recovery \
                 ends the queue there)"
            }
            EntryFault::Invalid => "invalid entries before the queue's last entry",
            EntryFault::TrailingInvalid => "invalid entries after the queue's last entry",
            EntryFault::Deleted => {
                "entries pointing into deleted segments after entries pointing at live records"
            }
            EntryFault::PastLogEnd => "entries pointing past the commit log's valid end",
            EntryFault::NotARecord => "entries pointing at no whole record",
            EntryFault::OtherQueue => "entries pointing at another queue's record",
            EntryFault::WrongOffset => "entries pointing at a record of another queue offset",
            EntryFault::WrongSize => "entries whose size is not their record's",
            EntryFault::WrongTags => "entries whose tags hash code is not their record's",
        }
    }
}

/// Ranges listed per [`QueueDamage`] (the counts are always exact).
const MAX_RANGES: usize = 16;

/// The damaged entries of one consume queue that share a [`EntryFault`]: how many and where,
/// as ranges of consecutive queue offsets, so that 1,000 bad entries are one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDamage {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// What is wrong.
    pub fault: EntryFault,
    /// Entries affected.
    pub entries: u64,
    /// The first ranges of affected queue offsets, `(first, last)` inclusive, in order.
    pub ranges: Vec<(u64, u64)>,
    /// Ranges after those listed.
    pub more_ranges: u64,
    /// The first affected entry, described (where it points, what is there), when there is
    /// more to say than the fault.
    pub example: Option<String>,
    /// The last offset added.
    last: u64,
}

impl QueueDamage {
    pub(super) fn new(topic: &str, queue_id: i32, fault: EntryFault) -> Self {
        QueueDamage {
            topic: topic.to_owned(),
            queue_id,
            fault,
            entries: 0,
            ranges: Vec::new(),
            more_ranges: 0,
            example: None,
            last: 0,
        }
    }

    /// Adds the `n` entries from queue offset `from` (after every offset added so far).
    pub(super) fn add(&mut self, from: u64, n: u64, example: impl FnOnce() -> Option<String>) {
        if n == 0 {
            return;
        }
        if self.entries == 0 {
            self.example = example();
        }
        let contiguous = self.entries > 0 && self.last + 1 == from;
        self.entries += n;
        self.last = from + n - 1;
        if contiguous {
            if self.more_ranges == 0 {
                if let Some(r) = self.ranges.last_mut() {
                    r.1 = self.last;
                }
            }
        } else if self.ranges.len() < MAX_RANGES {
            self.ranges.push((from, self.last));
        } else {
            self.more_ranges += 1;
        }
    }
}

impl std::fmt::Display for QueueDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        write!(
            f,
            "{}/{} offset(s) {}",
            self.topic,
            self.queue_id,
            ranges.join(", ")
        )?;
        if self.more_ranges > 0 {
            write!(f, " and {} more range(s)", self.more_ranges)?;
        }
        write!(f, ": {} {}", self.entries, self.fault.what())?;
        if let Some(e) = &self.example {
            write!(f, " (first: {e})")?;
        }
        Ok(())
    }
}
