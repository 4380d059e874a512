//! Helpers the kernel-table integration tests share.

use ember_quant::{Kernels, Tier};

/// Every tier this CPU runs, lowest first.
fn tiers() -> Vec<Tier> {
    [Tier::Generic, Tier::Avx2, Tier::Avx512, Tier::Neon, Tier::Dotprod]
        .into_iter()
        .filter(|t| t.is_available())
        .collect()
}

/// Every available tier's table, and the default table (`Kernels::best`,
/// which on x86 mixes tiers), each with its name.
pub fn tables() -> Vec<(String, Kernels)> {
    let mut v: Vec<(String, Kernels)> =
        tiers().into_iter().map(|t| (t.to_string(), Kernels::with_tier(t).unwrap())).collect();
    v.push(("best".to_string(), Kernels::best()));
    v
}
