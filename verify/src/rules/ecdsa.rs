//! ECDSA signature malleability. For every valid P-256 signature `(r, s)`,
//! `(r, n − s)` is valid too, so a token would have two string forms (and
//! two ids for anyone who keys a cache or a replay list on the string). We
//! sign with the low `s` and accept only the low `s`.

/// The order `n` of P-256, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `⌊n / 2⌋`, big-endian.
const HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether a raw `r ‖ s` ES256 signature (64 bytes) has its canonical, low
/// `s` (`s ≤ n/2`). Any other length is not canonical either.
pub fn is_low_s(signature: &[u8]) -> bool {
    signature.len() == 64 && signature[32..] <= HALF_N[..]
}

/// Turns a raw `r ‖ s` ES256 signature into its low-`s` form in place
/// (`s ← n − s` when `s > n/2`); other lengths are left alone.
pub fn normalize_s(signature: &mut [u8]) {
    if signature.len() != 64 || is_low_s(signature) {
        return;
    }
    let s = &mut signature[32..];
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let diff = u16::from(N[i])
            .wrapping_sub(u16::from(s[i]))
            .wrapping_sub(borrow);
        s[i] = (diff & 0xff) as u8;
        borrow = u16::from(diff > 0xff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_n_is_half_of_n() {
        // 2 · HALF_N + 1 = N.
        let mut doubled = [0u8; 32];
        let mut carry = 1u16;
        for i in (0..32).rev() {
            let v = u16::from(HALF_N[i]) * 2 + carry;
            doubled[i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert_eq!(doubled, N);
    }

    #[test]
    fn normalising_flips_a_high_s_and_keeps_a_low_one() {
        let mut sig = [0u8; 64];
        sig[32..].copy_from_slice(&N);
        sig[63] -= 1; // s = n − 1: high
        assert!(!is_low_s(&sig));
        normalize_s(&mut sig);
        assert!(is_low_s(&sig));
        assert_eq!(sig[32..63], [0u8; 31]);
        assert_eq!(sig[63], 1); // n − (n − 1)
        let before = sig;
        normalize_s(&mut sig);
        assert_eq!(sig, before);
        let mut half = [0u8; 64];
        half[32..].copy_from_slice(&HALF_N);
        assert!(is_low_s(&half));
        assert!(!is_low_s(&half[..63]));
    }
}
