//! FastCGI record codec without I/O (being written: see issue 2).
