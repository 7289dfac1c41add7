//! nginx module (being written: issue 4).
