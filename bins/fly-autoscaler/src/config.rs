//! Configuration: placeholder, filled by its issue.
