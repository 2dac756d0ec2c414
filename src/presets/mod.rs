//! The presets of the `objectsync` binary (`serve --preset NAME`), behind the `presets` feature:
//! the demo's types and rooms ([`demo`]), the benchmark's workload ([`bench`]) and a preset that
//! reaches every part of the protocol, for testing clients ([`conformance`]), and a board of
//! cards at three schema versions, the example of migrations ([`cards`]). An application
//! does not need them: they are the bundled demo and test fixtures, not part of the library.

pub mod bench;
pub mod cards;
pub mod conformance;
pub mod demo;
