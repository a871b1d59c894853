//! The `rehydra` binary as users, schedulers and plugins drive it: one test binary, a
//! module per area (fewer binaries to link).

mod active_directory;
mod active_directory_dc;
mod arc_sql_mi;
mod arc_sql_mi_cluster;
mod assessment;
mod azure;
mod basics;
mod cluster_targets;
mod exclude;
mod hyperv;
mod keyvault;
mod keyvault_tenants;
mod kube_clusters;
mod kube_velero;
mod kube_volumes;
mod kubernetes;
mod object_storage;
mod policies;
mod service;
mod service_operators;
mod service_requests;
mod sql_server;
mod sql_server_ag;
mod sql_server_cancel;
mod sql_server_entra;
mod sql_server_hostile;
mod sql_server_kerberos;
mod sql_server_via;
mod support;
mod vm_workloads;
