//! Who this stressd is: the identity a client talking to many of them shows and compares.
//!
//! The instance id is random at every process start, so a client that sees it change knows
//! the process restarted (an OOM kill, a rollout) even when the pod name stays the same.

use std::path::Path;

/// Identity of this process, fixed at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Random per process start (16 hex digits).
    pub instance_id: String,
    /// The kernel's host name ("" when unreadable).
    pub hostname: String,
    /// `POD_NAME` from the downward API ("" outside Kubernetes).
    pub pod_name: String,
    /// `POD_NAMESPACE` from the downward API.
    pub pod_namespace: String,
    /// `NODE_NAME` from the downward API.
    pub node_name: String,
    /// Process start, Unix milliseconds.
    pub started_at_unix_ms: i64,
    /// stressd's version.
    pub version: String,
}

impl Instance {
    /// Reads the host name under `fs_root` (`proc/sys/kernel/hostname`) and the downward-API
    /// variables through `env`, and draws a fresh instance id.
    pub fn detect(fs_root: &Path, env: impl Fn(&str) -> Option<String>) -> Self {
        let hostname = std::fs::read_to_string(fs_root.join("proc/sys/kernel/hostname"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let var = |k: &str| env(k).map(|v| v.trim().to_string()).unwrap_or_default();
        Self {
            instance_id: format!("{:016x}", rand::random::<u64>()),
            hostname,
            pod_name: var("POD_NAME"),
            pod_namespace: var("POD_NAMESPACE"),
            node_name: var("NODE_NAME"),
            started_at_unix_ms: crate::logs::now_unix_ms(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_hostname_and_downward_api_and_draws_a_fresh_id() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("proc/sys/kernel")).unwrap();
        std::fs::write(root.path().join("proc/sys/kernel/hostname"), "web-7\n").unwrap();
        let env = |k: &str| match k {
            "POD_NAME" => Some("memory-stress-abc12".to_string()),
            "POD_NAMESPACE" => Some("memstress".to_string()),
            "NODE_NAME" => Some(" node-1 ".to_string()),
            _ => None,
        };
        let a = Instance::detect(root.path(), env);
        let b = Instance::detect(root.path(), env);
        assert_eq!(a.hostname, "web-7");
        assert_eq!(a.pod_name, "memory-stress-abc12");
        assert_eq!(a.pod_namespace, "memstress");
        assert_eq!(a.node_name, "node-1");
        assert_eq!(a.instance_id.len(), 16);
        assert_ne!(
            a.instance_id, b.instance_id,
            "a new process start is a new id"
        );
    }

    #[test]
    fn outside_kubernetes_nothing_is_made_up() {
        let root = tempfile::tempdir().unwrap();
        let i = Instance::detect(root.path(), |_| None);
        assert_eq!(i.hostname, "");
        assert_eq!(i.pod_name, "");
        assert_eq!(i.node_name, "");
    }
}
