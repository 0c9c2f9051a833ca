//! The sasquatch `charm.sh/v1` file format (`charm-protocol.md` §6).
