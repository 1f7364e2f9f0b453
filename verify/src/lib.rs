//! Offline verification of tokenmint access tokens (work in progress).
