//! A small deterministic random number generator for tests that pick
//! random moments (cut points, kill times): seeded from
//! `HERALD_TEST_SEED` when set, so a failure can be replayed.
#![allow(dead_code)]

/// xorshift64*: deterministic given the seed the test prints.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `HERALD_TEST_SEED` if set, else from the clock; prints
    /// the seed.
    pub fn from_env_or_time() -> Rng {
        let seed = std::env::var("HERALD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("rng seed {seed} (set HERALD_TEST_SEED to replay)");
        Rng::new(seed)
    }

    /// A generator with this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}
