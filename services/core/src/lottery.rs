//! 报名摇号: a release round decided by registration and a public draw instead of a rush.
//!
//! A rush rewards fast phones and bots. A lottery round (`RoundMode::Lottery`) instead
//! takes registrations during a window, then draws `quantity` winners at random in a way
//! anyone can check afterwards. This module is the arithmetic of that draw, with no I/O:
//!
//! 1. **Commit.** When the round is created the server makes a 32-byte secret [`Seed`] and
//!    publishes only its [`Commitment`] = SHA-256(seed), before any registration exists.
//!    The seed cannot be changed afterwards without the commitment showing it.
//! 2. **Register.** Each person registers once. What is published of an entry is its
//!    [`RegistrationHash`] = SHA-256(campaign id ‖ round number ‖ person id), with the exact
//!    bytes:
//!    - campaign id: 8 bytes, signed 64-bit big-endian;
//!    - round number: 4 bytes, unsigned 32-bit big-endian;
//!    - person id: its UTF-8 bytes (1–64 characters of `[A-Za-z0-9_-]`), no terminator.
//!
//!    The fixed widths make the encoding unambiguous. A resident recomputes their own hash
//!    to find themselves in the list.
//! 3. **Draw.** After the window the seed is revealed. Each distinct entry `h` gets the key
//!    SHA-256(seed ‖ h) (the 32 seed bytes, then the 32 hash bytes); entries are ordered by
//!    key ascending, as unsigned bytes (ties, which SHA-256 makes practically impossible, by
//!    the entry itself), and the first `min(quantity, entries)` win, in that order
//!    ([`draw`]). The result depends only on the seed, the SET of entries and the quantity:
//!    not on the order they are listed in, nor on who runs it.
//! 4. **Verify.** [`verify`] takes the published draw ([`PublishedDraw`]), checks that the
//!    seed hashes to the commitment and that recomputing the winners from the published
//!    list gives the published winners, and names every difference.
//!
//! What this proves and what it does not: the commitment stops the operator from choosing
//! the seed after seeing the entries, and the published list lets anyone check that the
//! winners follow from the seed. It does not stop an operator who knows the seed from
//! adding entries of their own during the window; those would be registrations of real-name
//! identities, auditable against the identity platform, and the count of entries is public
//! while the window is open. Person ids are low-entropy (a resident id number), so a
//! registration hash is a pseudonym, not anonymity: whoever knows a person's id can check
//! whether that person registered.
//!
//! The quantity offered is the round's configured `quantity`. A winner the claim script
//! then refuses (per-person limit reached, stock short) gets nothing, and that stock stays
//! for the next round; there is no reserve list, so the draw itself never changes.

use crate::ids::{CampaignId, ClaimId, PersonId};
use chrono::{DateTime, Utc};
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The name of the algorithm above, carried in every published draw.
pub const ALGORITHM: &str = "vp-lottery-v1";

/// The namespace of winners' claim ids (fixed forever: changing it would issue a second
/// voucher to a winner of a draw that is run again).
pub const LOTTERY_NAMESPACE: Uuid = Uuid::from_u128(0x2b7e_1516_28ae_4d2a_a6ab_f715_8809_cf4f);

/// A text that is not 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hexadecimal digits (32 bytes)")]
pub struct InvalidDigest;

fn parse_32(s: &str) -> Result<[u8; 32], InvalidDigest> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| InvalidDigest)?;
    Ok(out)
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A 32-byte public value written as 64 lowercase hexadecimal digits.
macro_rules! digest_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            /// From its 32 bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// Its 32 bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// 64 lowercase hexadecimal digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hexadecimal digits (either case).
            ///
            /// # Errors
            /// [`InvalidDigest`] for any other text.
            pub fn parse_hex(s: &str) -> Result<Self, InvalidDigest> {
                parse_32(s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidDigest;
            fn from_str(s: &str) -> Result<Self, InvalidDigest> {
                $name::parse_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_type! {
    /// SHA-256 of a round's secret seed, published when the round is created.
    Commitment
}

digest_type! {
    /// SHA-256(campaign id ‖ round number ‖ person id): one entry of the published list.
    /// Ordered as unsigned bytes, which is the order of the lowercase hexadecimal text.
    RegistrationHash
}

/// A round's secret seed: 32 random bytes, kept by the server until the draw. Its `Debug`
/// never shows the bytes; it serialises (as hexadecimal) only inside a [`PublishedDraw`],
/// after the reveal.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; 32]);

/// The system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random source failed")]
pub struct RandomUnavailable;

impl Seed {
    /// A fresh seed from the operating system's random source (ring's `SystemRandom`).
    ///
    /// # Errors
    /// [`RandomUnavailable`] if the source fails.
    pub fn generate() -> Result<Seed, RandomUnavailable> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| RandomUnavailable)?;
        Ok(Seed(bytes))
    }

    /// From its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Seed {
        Seed(bytes)
    }

    /// From stored bytes.
    ///
    /// # Errors
    /// [`InvalidDigest`] unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Seed, InvalidDigest> {
        <[u8; 32]>::try_from(bytes)
            .map(Seed)
            .map_err(|_| InvalidDigest)
    }

    /// Its 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The commitment: SHA-256(seed).
    pub fn commitment(&self) -> Commitment {
        Commitment(sha256(&[&self.0]))
    }

    /// 64 lowercase hexadecimal digits (for publishing after the draw).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hexadecimal digits.
    ///
    /// # Errors
    /// [`InvalidDigest`] for any other text.
    pub fn parse_hex(s: &str) -> Result<Seed, InvalidDigest> {
        parse_32(s).map(Seed)
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<secret>)")
    }
}

impl Serialize for Seed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Seed::parse_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The published entry of `person` in round `round_no` of `campaign`:
/// SHA-256(campaign id as 8 bytes big-endian ‖ round number as 4 bytes big-endian ‖ the
/// person id's UTF-8 bytes).
pub fn registration_hash(
    campaign: CampaignId,
    round_no: u32,
    person: &PersonId,
) -> RegistrationHash {
    RegistrationHash(sha256(&[
        &campaign.0.to_be_bytes(),
        &round_no.to_be_bytes(),
        person.as_str().as_bytes(),
    ]))
}

/// The draw key of `entry`: SHA-256(seed ‖ entry). Lower keys win.
pub fn rank_key(seed: &Seed, entry: &RegistrationHash) -> [u8; 32] {
    sha256(&[&seed.0, &entry.0])
}

/// The winners: the distinct `entries` ordered by [`rank_key`] (then by the entry), the
/// first `min(quantity, distinct entries)` of them, in that order (rank 1 first).
pub fn draw(seed: &Seed, entries: &[RegistrationHash], quantity: u32) -> Vec<RegistrationHash> {
    let mut keyed: Vec<([u8; 32], RegistrationHash)> =
        entries.iter().map(|e| (rank_key(seed, e), *e)).collect();
    keyed.sort_unstable();
    keyed.dedup_by(|a, b| a.1 == b.1);
    let take = usize::try_from(quantity).unwrap_or(usize::MAX);
    keyed.into_iter().take(take).map(|(_, e)| e).collect()
}

/// The claim id of a winner's voucher (UUID v5 of `lottery:{campaign}:{round}:{person}`):
/// the same on every run of the issuance, so the claim script issues it at most once.
pub fn winner_claim_id(campaign: CampaignId, round_no: u32, person: &PersonId) -> ClaimId {
    ClaimId(Uuid::new_v5(
        &LOTTERY_NAMESPACE,
        format!("lottery:{}:{round_no}:{}", campaign.0, person.as_str()).as_bytes(),
    ))
}

/// A draw as published (`GET /v1/campaigns/{id}/rounds/{n}/draw`) and as `issuance
/// verify-draw` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedDraw {
    /// [`ALGORITHM`].
    pub algorithm: String,
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The round.
    pub round_no: u32,
    /// Winners offered: the round's quantity.
    pub quantity: u32,
    /// Published when the round was created.
    pub commitment: Commitment,
    /// Revealed at the draw.
    pub seed: Seed,
    /// When the draw was made.
    pub drawn_at: DateTime<Utc>,
    /// Every entry, ascending, no duplicates.
    pub registration_hashes: Vec<RegistrationHash>,
    /// The winners, in draw order (rank 1 first).
    pub winners: Vec<RegistrationHash>,
}

/// Where a published draw differs from what its own seed and list give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discrepancy {
    /// Not an algorithm this code knows.
    Algorithm(String),
    /// SHA-256(seed) is not the published commitment.
    Commitment {
        /// SHA-256 of the published seed.
        from_seed: Commitment,
        /// The published commitment.
        published: Commitment,
    },
    /// `registration_hashes[index]` is not greater than the entry before it (the list is
    /// not sorted ascending, or repeats an entry).
    Unsorted {
        /// Index in the list.
        index: usize,
    },
    /// A different number of winners.
    WinnerCount {
        /// `min(quantity, entries)`.
        expected: usize,
        /// Published.
        published: usize,
    },
    /// The winner of a rank differs (rank 1 is the first winner).
    Winner {
        /// Rank, from 1.
        rank: usize,
        /// Recomputed.
        expected: Option<RegistrationHash>,
        /// Published.
        published: Option<RegistrationHash>,
    },
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_none =
            |h: &Option<RegistrationHash>| h.map_or_else(|| "none".into(), |h| h.to_hex());
        match self {
            Discrepancy::Algorithm(a) => write!(f, "unknown algorithm {a:?} (expected {ALGORITHM:?})"),
            Discrepancy::Commitment { from_seed, published } => write!(
                f,
                "the seed does not match the commitment: SHA-256(seed) = {from_seed}, published commitment = {published}"
            ),
            Discrepancy::Unsorted { index } => write!(
                f,
                "registration_hashes[{index}] is not greater than the entry before it (the list must be ascending without repeats)"
            ),
            Discrepancy::WinnerCount { expected, published } => write!(
                f,
                "{published} winners published, {expected} expected (min(quantity, registrations))"
            ),
            Discrepancy::Winner { rank, expected, published } => write!(
                f,
                "winner #{rank}: published {}, recomputed {}",
                or_none(published),
                or_none(expected)
            ),
        }
    }
}

/// What a draw that checks out contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Entries in the list.
    pub registrations: usize,
    /// Winners.
    pub winners: usize,
}

/// Checks a published draw: the seed against the commitment, the list's order, and the
/// winners against a recomputation from the seed and the list.
///
/// # Errors
/// Every [`Discrepancy`] found (rank differences all listed).
pub fn verify(published: &PublishedDraw) -> Result<Verified, Vec<Discrepancy>> {
    let mut found = Vec::new();
    if published.algorithm != ALGORITHM {
        found.push(Discrepancy::Algorithm(published.algorithm.clone()));
    }
    let from_seed = published.seed.commitment();
    if from_seed != published.commitment {
        found.push(Discrepancy::Commitment {
            from_seed,
            published: published.commitment,
        });
    }
    let list = &published.registration_hashes;
    found.extend(
        list.windows(2)
            .enumerate()
            .filter(|(_, pair)| pair[0] >= pair[1])
            .map(|(i, _)| Discrepancy::Unsorted { index: i + 1 }),
    );
    let expected = draw(&published.seed, list, published.quantity);
    if expected.len() != published.winners.len() {
        found.push(Discrepancy::WinnerCount {
            expected: expected.len(),
            published: published.winners.len(),
        });
    }
    for rank in 0..expected.len().max(published.winners.len()) {
        let (e, p) = (
            expected.get(rank).copied(),
            published.winners.get(rank).copied(),
        );
        if e != p {
            found.push(Discrepancy::Winner {
                rank: rank + 1,
                expected: e,
                published: p,
            });
        }
    }
    if found.is_empty() {
        Ok(Verified {
            registrations: list.len(),
            winners: expected.len(),
        })
    } else {
        Err(found)
    }
}

/// Where one person stands in a published draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Their entry.
    pub hash: RegistrationHash,
    /// Whether the list holds it.
    pub registered: bool,
    /// Their rank among the winners (from 1), if they won.
    pub rank: Option<usize>,
}

impl PublishedDraw {
    /// Where `person` stands in this draw.
    pub fn standing_of(&self, person: &PersonId) -> Standing {
        let hash = registration_hash(self.campaign_id, self.round_no, person);
        Standing {
            hash,
            registered: self.registration_hashes.contains(&hash),
            rank: self.winners.iter().position(|w| *w == hash).map(|i| i + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seed_0_to_31() -> Seed {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap();
        }
        Seed::from_bytes(bytes)
    }

    fn person(s: &str) -> PersonId {
        PersonId::parse(s).unwrap()
    }

    fn entries(n: usize) -> Vec<RegistrationHash> {
        (1..=n)
            .map(|i| registration_hash(CampaignId(7), 2, &person(&format!("R{i:06}"))))
            .collect()
    }

    fn published(seed: &Seed, list: &[RegistrationHash], quantity: u32) -> PublishedDraw {
        let mut sorted = list.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        PublishedDraw {
            algorithm: ALGORITHM.into(),
            campaign_id: CampaignId(7),
            round_no: 2,
            quantity,
            commitment: seed.commitment(),
            seed: seed.clone(),
            drawn_at: DateTime::from_timestamp(1_777_600_800, 0).unwrap(),
            winners: draw(seed, &sorted, quantity),
            registration_hashes: sorted,
        }
    }

    /// The worked example of the README: seed = the bytes 0x00, 0x01, …, 0x1f; campaign 7,
    /// round 2; five residents R000001…R000005; quantity 2. The values were also computed
    /// with Python's hashlib, independently of this code.
    #[test]
    fn worked_example() {
        let seed = seed_0_to_31();
        assert_eq!(
            seed.commitment().to_hex(),
            "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
        );
        let list = entries(5);
        let hex: Vec<String> = list.iter().map(RegistrationHash::to_hex).collect();
        assert_eq!(
            hex,
            [
                "388a1b01f2a076083faed5a34851b0ef2ddee8cac96d6cdeccbbbf238430d801", // R000001
                "83bd71819e2f5aa5c0ef2206e054f834faddb0e72bf5b3893d800b52fbea55ee", // R000002
                "4106fb9be9aedfcdda4a5690d5377e3fb0938ff8ed943d14c315aa6701fd8b73", // R000003
                "018b8d1f8ac224e667250469901d86aaf11d1725c7ff8aabce8141a36ff8ada6", // R000004
                "dfe6c9c38b116042e13b304afcd6a83c7211dd4de98fefc62b67fce2bfab7e91", // R000005
            ]
        );
        // Draw keys SHA-256(seed ‖ entry) begin 12208faa… (R000003), 1df06b63… (R000005),
        // 3510cd72… (R000001), c5c46200… (R000004), cd38af05… (R000002).
        assert_eq!(hex::encode(&rank_key(&seed, &list[2])[..4]), "12208faa");
        assert_eq!(hex::encode(&rank_key(&seed, &list[4])[..4]), "1df06b63");
        // Two winners: R000003, then R000005. With quantity 5 (or more), all five in order.
        assert_eq!(draw(&seed, &list, 2), vec![list[2], list[4]]);
        assert_eq!(
            draw(&seed, &list, 9),
            vec![list[2], list[4], list[0], list[3], list[1]]
        );
        assert_eq!(draw(&seed, &list, 0), vec![]);
        assert!(verify(&published(&seed, &list, 2)).is_ok());
    }

    #[test]
    fn hex_types_parse_and_refuse() {
        let h = entries(1)[0];
        assert_eq!(RegistrationHash::parse_hex(&h.to_hex()), Ok(h));
        assert_eq!(
            RegistrationHash::parse_hex(&h.to_hex().to_uppercase()),
            Ok(h)
        );
        assert!(RegistrationHash::parse_hex("abc").is_err());
        assert!(RegistrationHash::parse_hex(&"g".repeat(64)).is_err());
        assert!(Seed::from_slice(&[0u8; 31]).is_err());
        assert_eq!(format!("{:?}", seed_0_to_31()), "Seed(<secret>)");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert_eq!(serde_json::from_str::<RegistrationHash>(&json).unwrap(), h);
    }

    #[test]
    fn generated_seeds_differ() {
        let (a, b) = (Seed::generate().unwrap(), Seed::generate().unwrap());
        assert_ne!(a, b);
        assert_ne!(a.commitment(), b.commitment());
    }

    #[test]
    fn the_registration_hash_encodes_fixed_widths() {
        // 8 + 4 bytes of numbers before the id: campaign 1 round 23 person "4x" is not
        // campaign 1 round 2 person "34x".
        assert_ne!(
            registration_hash(CampaignId(1), 23, &person("4x")),
            registration_hash(CampaignId(1), 2, &person("34x"))
        );
        let manual = sha256(&[&[0, 0, 0, 0, 0, 0, 0, 7], &[0, 0, 0, 2], b"R000001"]);
        assert_eq!(
            registration_hash(CampaignId(7), 2, &person("R000001")).as_bytes(),
            &manual
        );
    }

    #[test]
    fn claim_ids_are_stable_and_distinct() {
        let p = person("R000001");
        let id = winner_claim_id(CampaignId(7), 2, &p);
        assert_eq!(id, winner_claim_id(CampaignId(7), 2, &p));
        assert_ne!(id, winner_claim_id(CampaignId(7), 3, &p));
        assert_ne!(id, winner_claim_id(CampaignId(8), 2, &p));
        assert_ne!(id, winner_claim_id(CampaignId(7), 2, &person("R000002")));
        assert_eq!(id.0.get_version_num(), 5);
    }

    #[test]
    fn tampering_is_named() {
        let seed = seed_0_to_31();
        let good = published(&seed, &entries(30), 10);
        assert_eq!(
            verify(&good),
            Ok(Verified {
                registrations: 30,
                winners: 10
            })
        );

        let mut other_seed = good.clone();
        other_seed.seed = Seed::from_bytes([9; 32]);
        let found = verify(&other_seed).unwrap_err();
        assert!(
            matches!(found[0], Discrepancy::Commitment { .. }),
            "{found:?}"
        );

        let mut dropped = good.clone();
        let loser = *dropped
            .registration_hashes
            .iter()
            .find(|h| !good.winners.contains(h))
            .unwrap();
        dropped
            .registration_hashes
            .retain(|h| *h != good.winners[0]);
        dropped.registration_hashes.push(loser);
        let found = verify(&dropped).unwrap_err();
        assert!(found
            .iter()
            .any(|d| matches!(d, Discrepancy::Unsorted { .. })));
        assert!(found
            .iter()
            .any(|d| matches!(d, Discrepancy::Winner { rank: 1, .. })));

        let mut swapped = good.clone();
        swapped.winners.swap(0, 1);
        let found = verify(&swapped).unwrap_err();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].to_string().starts_with("winner #1: published"));

        let mut short = good;
        short.winners.pop();
        let found = verify(&short).unwrap_err();
        assert_eq!(
            found[0],
            Discrepancy::WinnerCount {
                expected: 10,
                published: 9
            }
        );
    }

    #[test]
    fn a_person_finds_their_standing() {
        let seed = seed_0_to_31();
        let d = published(&seed, &entries(5), 2);
        let winner = (1..=5)
            .map(|i| person(&format!("R{i:06}")))
            .find(|p| d.standing_of(p).rank == Some(1))
            .unwrap();
        assert!(d.standing_of(&winner).registered);
        let stranger = d.standing_of(&person("R999999"));
        assert!(!stranger.registered);
        assert_eq!(stranger.rank, None);
    }

    fn any_entries() -> impl Strategy<Value = Vec<RegistrationHash>> {
        prop::collection::vec(any::<[u8; 32]>(), 0..60)
            .prop_map(|v| v.into_iter().map(RegistrationHash::from_bytes).collect())
    }

    proptest! {
        #[test]
        fn the_draw_is_deterministic_and_order_independent(
            seed in any::<[u8; 32]>(),
            list in any_entries(),
            quantity in 0u32..80,
            shuffle in any::<u64>(),
        ) {
            let seed = Seed::from_bytes(seed);
            let first = draw(&seed, &list, quantity);
            prop_assert_eq!(&first, &draw(&seed, &list, quantity));
            let mut shuffled = list.clone();
            // A deterministic permutation from `shuffle` (no random source in the test).
            let len = shuffled.len();
            if len > 1 {
                let mut s = shuffle;
                for i in (1..len).rev() {
                    s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    let j = usize::try_from(s >> 33).unwrap() % (i + 1);
                    shuffled.swap(i, j);
                }
            }
            shuffled.reverse();
            prop_assert_eq!(&first, &draw(&seed, &shuffled, quantity));
        }

        #[test]
        fn exactly_min_quantity_distinct_winners_all_registered(
            seed in any::<[u8; 32]>(),
            list in any_entries(),
            repeats in 0usize..5,
            quantity in 0u32..80,
        ) {
            let seed = Seed::from_bytes(seed);
            // Repeated entries count once.
            let mut with_repeats = list.clone();
            with_repeats.extend(list.iter().take(repeats).copied());
            let mut distinct = list.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let winners = draw(&seed, &with_repeats, quantity);
            prop_assert_eq!(winners.len(), distinct.len().min(usize::try_from(quantity).unwrap()));
            let mut unique = winners.clone();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(unique.len(), winners.len());
            prop_assert!(winners.iter().all(|w| distinct.binary_search(w).is_ok()));
        }

        #[test]
        fn more_quantity_extends_the_same_ranking(
            seed in any::<[u8; 32]>(),
            list in any_entries(),
            quantity in 0u32..60,
        ) {
            let seed = Seed::from_bytes(seed);
            let fewer = draw(&seed, &list, quantity);
            let more = draw(&seed, &list, quantity + 1);
            prop_assert_eq!(&more[..fewer.len()], &fewer[..]);
        }

        #[test]
        fn another_seed_gives_another_ranking(
            seed in any::<[u8; 32]>(),
            flip in 0usize..256,
            n in 20usize..60,
        ) {
            // With 20 entries or more, two seeds ranking them identically has odds below
            // 1 in 20! (about 4e-19).
            let list = entries(n);
            let quantity = u32::try_from(n).unwrap();
            let mut other = seed;
            other[flip / 8] ^= 1 << (flip % 8);
            let a = draw(&Seed::from_bytes(seed), &list, quantity);
            let b = draw(&Seed::from_bytes(other), &list, quantity);
            prop_assert_ne!(a, b);
        }

        #[test]
        fn what_the_draw_publishes_verifies_and_any_changed_byte_does_not(
            seed in any::<[u8; 32]>(),
            n in 1usize..40,
            quantity in 1u32..40,
            which in 0usize..3,
            byte in 0usize..32,
        ) {
            let seed = Seed::from_bytes(seed);
            let good = published(&seed, &entries(n), quantity);
            prop_assert!(verify(&good).is_ok());
            let mut bad = good.clone();
            match which {
                0 => {
                    let mut b = *bad.seed.as_bytes();
                    b[byte] ^= 1;
                    bad.seed = Seed::from_bytes(b);
                }
                1 => {
                    let mut b = *bad.winners[0].as_bytes();
                    b[byte] ^= 1;
                    bad.winners[0] = RegistrationHash::from_bytes(b);
                }
                _ => {
                    let mut b = *bad.commitment.as_bytes();
                    b[byte] ^= 1;
                    bad.commitment = Commitment::from_bytes(b);
                }
            }
            prop_assert!(verify(&bad).is_err());
        }
    }
}
