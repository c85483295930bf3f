//! Random identifiers: the tokens, tickets, codes and request ids the emulator hands out.

use rand::distr::{Alphanumeric, SampleString};

/// `n` random letters and digits.
pub(crate) fn random(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), n)
}
