//! Disk formats and the NBD server checked against independent implementations
//! (qemu-img, qemu-io, libvhdi) and real sockets: one test binary, one module per
//! subject. (`overlay_memory` stays alone: its counting allocator must see no other
//! test's allocations.)

mod common;
mod nbd_client;

#[path = "images/chains.rs"]
mod chains;
#[path = "images/confine.rs"]
mod confine;
#[path = "images/nbd.rs"]
mod nbd;
#[path = "images/qcow2.rs"]
mod qcow2;
#[path = "images/vhd.rs"]
mod vhd;
#[path = "images/vhdx.rs"]
mod vhdx;
#[path = "images/vhdx_write.rs"]
mod vhdx_write;
