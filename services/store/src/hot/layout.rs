//! The byte layout of the per-voucher hot state (see the module doc of [`super`]): which
//! bucket a claim id or a person id lives in, and the binary claim record. The scripts read
//! the record at the fixed offsets defined here; the audit renders it as text.
//!
//! Changing anything here changes where existing entries are looked up: a Redis holding
//! campaigns written with another layout must be rebuilt from PostgreSQL
//! (`reconciliation rebuild`).

use uuid::Uuid;

/// Claim records (and person counts) per bucket when the whole stock is claimed once. Well
/// below Redis' `hash-max-listpack-entries` (128), so a bucket stays a listpack even when
/// recycled stock is claimed again (records of recycled vouchers stay) or the hash is uneven.
pub(crate) const ENTRIES_PER_BUCKET: u32 = 48;

/// Bytes of a claim record before the person id: voucher id (16), claimed-at (8), state (1).
pub(crate) const RECORD_HEAD: usize = 25;

/// The state byte of a live claim record.
pub(crate) const LIVE: u8 = b'L';
/// The state byte of a recycled claim record.
pub(crate) const RECYCLED: u8 = b'R';

/// The number of buckets of a campaign of `stock` vouchers (fixed when Redis first learns
/// the campaign, then read from the `nb` field of `:c`).
pub(crate) fn bucket_count(stock: u32) -> u32 {
    stock.div_ceil(ENTRIES_PER_BUCKET).max(1)
}

/// FNV-1a, 64 bits: stable across builds and platforms (part of the layout).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn bucket_of(bytes: &[u8], buckets: u32) -> u32 {
    // The remainder is below `buckets`, a u32.
    u32::try_from(fnv1a(bytes) % u64::from(buckets.max(1))).unwrap_or(0)
}

/// The bucket of a claim id's record.
pub(crate) fn claim_bucket(claim: Uuid, buckets: u32) -> u32 {
    bucket_of(claim.as_bytes(), buckets)
}

/// The bucket of a person's count.
pub(crate) fn person_bucket(person: &str, buckets: u32) -> u32 {
    bucket_of(person.as_bytes(), buckets)
}

/// A claim record: voucher id (16 raw bytes), claimed-at (Unix ms, 8 bytes big-endian),
/// state (`L` live, `R` recycled), person id (the rest).
pub(crate) fn encode_record(voucher: Uuid, claimed_at_ms: i64, state: u8, person: &str) -> Vec<u8> {
    let mut record = Vec::with_capacity(RECORD_HEAD + person.len());
    record.extend_from_slice(voucher.as_bytes());
    record.extend_from_slice(&claimed_at_ms.to_be_bytes());
    record.push(state);
    record.extend_from_slice(person.as_bytes());
    record
}

/// The voucher id and claimed-at of a record's head (its first 24 bytes, as the claim
/// script returns them on a replay).
pub(crate) fn decode_head(head: &[u8]) -> Option<(Uuid, i64)> {
    let voucher = Uuid::from_slice(head.get(..16)?).ok()?;
    let at = i64::from_be_bytes(head.get(16..24)?.try_into().ok()?);
    Some((voucher, at))
}

/// A decoded claim record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub(crate) voucher: Uuid,
    pub(crate) claimed_at_ms: i64,
    pub(crate) state: u8,
    pub(crate) person: &'a str,
}

/// Decodes a whole record (`None` when it is not one).
pub(crate) fn decode_record(record: &[u8]) -> Option<Record<'_>> {
    let (voucher, claimed_at_ms) = decode_head(record)?;
    let state = *record.get(24)?;
    let person = std::str::from_utf8(record.get(RECORD_HEAD..)?).ok()?;
    if !(state == LIVE || state == RECYCLED) || person.is_empty() {
        return None;
    }
    Some(Record {
        voucher,
        claimed_at_ms,
        state,
        person,
    })
}

impl Record<'_> {
    /// The text form used by the audit: `voucher_hex|claimed_at_ms|person|L` (or `R`).
    pub(crate) fn render(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.voucher.simple(),
            self.claimed_at_ms,
            self.person,
            char::from(self.state)
        )
    }
}

/// Parses the text form back into a record (for a restore).
pub(crate) fn parse_rendered(text: &str) -> Option<Vec<u8>> {
    let (voucher, rest) = text.split_once('|')?;
    let (at, rest) = rest.split_once('|')?;
    let (person, state) = rest.rsplit_once('|')?;
    let state = match state {
        "L" => LIVE,
        "R" => RECYCLED,
        _ => return None,
    };
    if person.is_empty() {
        return None;
    }
    Some(encode_record(
        Uuid::parse_str(voucher).ok()?,
        at.parse().ok()?,
        state,
        person,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_counts_follow_the_stock() {
        assert_eq!(bucket_count(0), 1);
        assert_eq!(bucket_count(1), 1);
        assert_eq!(bucket_count(48), 1);
        assert_eq!(bucket_count(49), 2);
        assert_eq!(bucket_count(200_000), 4_167);
    }

    #[test]
    fn the_hash_is_stable() {
        // FNV-1a 64 reference values: the layout depends on them.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(person_bucket("anyone", 1), 0);
    }

    #[test]
    fn buckets_are_even_enough_to_stay_listpacks() {
        let buckets = bucket_count(200_000);
        let mut claims = vec![0u32; buckets as usize];
        let mut persons = vec![0u32; buckets as usize];
        for n in 0..200_000u64 {
            let claim = Uuid::from_u64_pair(0x0190_0000_0000_7000, n);
            claims[claim_bucket(claim, buckets) as usize] += 1;
            persons[person_bucket(&format!("1405{n:014}"), buckets) as usize] += 1;
        }
        let worst = claims.iter().chain(&persons).max().copied().unwrap_or(0);
        assert!(worst < 100, "a bucket holds {worst}");
    }

    #[test]
    fn records_round_trip() {
        let voucher = Uuid::from_u128(0x0190_aaaa_bbbb_7ccc_8ddd_eeee_ffff_0001);
        let record = encode_record(voucher, 1_777_600_000_123, LIVE, "140500000000000042");
        assert_eq!(record.len(), RECORD_HEAD + 18);
        assert_eq!(
            decode_head(&record[..24]),
            Some((voucher, 1_777_600_000_123))
        );
        let decoded = decode_record(&record).expect("a record");
        let text = decoded.render();
        assert_eq!(
            text,
            "0190aaaabbbb7ccc8dddeeeeffff0001|1777600000123|140500000000000042|L"
        );
        assert_eq!(parse_rendered(&text), Some(record));
        assert_eq!(parse_rendered("x|1|p|L"), None);
        assert_eq!(decode_record(b"short"), None);
    }
}
