//! rehydra-azure against real protocols on local stand-ins: an HTTPS Entra ID token
//! endpoint with a test CA, stand-in `az`/`azd` scripts, an Azure Arc identity endpoint on
//! loopback. Nothing leaves this machine: the IMDS probe is pointed at a closed loopback
//! port in every test.

mod arc;
mod cache;
mod chain;
mod cli;
mod entra;
mod leaks;
mod support;
mod tenants;
