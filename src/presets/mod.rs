//! The presets of the `objectsync` binary (`serve --preset NAME`), behind the `presets` feature:
//! the demo's types and rooms ([`demo`]), the benchmark's workload ([`bench`]) and a preset that
//! reaches every part of the protocol, for testing clients ([`conformance`]). An application
//! does not need them: they are the bundled demo and test fixtures, not part of the library.

pub mod bench;
pub mod conformance;
pub mod demo;
