//! `rehydra plugins kube-cluster`: Kubernetes clusters whose API servers the host reaches
//! with the CA and credentials of the admin's kubeconfig.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use rehydra_api::plugins::{KubeCluster, Plugins};

use crate::args::Cli;
use crate::directory::absolute;
use crate::output::json;

/// `plugins kube-cluster`.
#[derive(Subcommand, Debug)]
pub enum KubeClusterCommand {
    /// Add (or replace) a cluster: its kubeconfig is read now (and whenever a plugin
    /// runs, so renewed credentials are used), for the API server, the CA to trust and
    /// the client certificate or token to sign in with. The catalog keeps the file's path,
    /// never what it holds. Plugins granted `http:<host>:<port>` of the API server
    /// reach it this way and never see the credentials.
    Add {
        /// Your name for the cluster, e.g. aks-a.
        name: String,
        /// The kubeconfig, e.g. from `az aksarc get-credentials --admin --file …`.
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Its context (default its current context).
        #[arg(long)]
        context: Option<String>,
    },
    /// Configured clusters: the API server and how the host signs in, as each
    /// kubeconfig says now.
    List,
    /// Forget a cluster (its kubeconfig is left alone).
    Remove {
        /// Cluster name.
        name: String,
    },
}

/// Run a `plugins kube-cluster` command.
pub fn run(cli: &Cli, p: &Plugins, cmd: &KubeClusterCommand) -> Result<()> {
    match cmd {
        KubeClusterCommand::Add {
            name,
            kubeconfig,
            context,
        } => {
            let view = p.set_kube_cluster(KubeCluster {
                name: name.clone(),
                kubeconfig: absolute(kubeconfig)?,
                context: context.clone(),
                server: None,
            })?;
            if cli.json {
                json(&view)?;
            } else {
                let server = view.server.unwrap_or_default();
                let at = server.split_once("://").map_or(server.as_str(), |(_, a)| a);
                println!(
                    "cluster {name} kept: {server}, signing in with {}",
                    view.sign_in.unwrap_or_default()
                );
                println!(
                    "grant it with: rehydra plugins grant kubernetes http:{at}; and give plugins kube={server}"
                );
            }
        }
        KubeClusterCommand::List => {
            let all = p.kube_cluster_views()?;
            if cli.json {
                json(&all)?;
            } else {
                for v in all {
                    match (&v.server, &v.problem) {
                        (Some(s), _) => println!(
                            "{:<20} {s} ({})",
                            v.cluster.name,
                            v.sign_in.as_deref().unwrap_or_default()
                        ),
                        (None, p) => println!(
                            "{:<20} does not read: {}",
                            v.cluster.name,
                            p.as_deref().unwrap_or_default()
                        ),
                    }
                }
            }
        }
        KubeClusterCommand::Remove { name } => {
            if !p.remove_kube_cluster(name)? {
                bail!("no Kubernetes cluster named {name} (rehydra plugins kube-cluster list)");
            }
        }
    }
    Ok(())
}
