-- Kubernetes clusters whose API servers the host reaches with the CA and credentials of
-- the admin's kubeconfig. The spec names the kubeconfig file and context, never what it
-- holds: the file is read each time, so credentials the admin renews are used as they are.
CREATE TABLE kube_clusters (
    name     TEXT PRIMARY KEY,
    spec     TEXT NOT NULL,              -- JSON: kubeconfig path, context
    added_at TEXT NOT NULL
);
