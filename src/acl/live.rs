//! The policy in force: ACLs and keys loaded together, swapped whole on
//! reload (`ArcSwap`, so the request path reads it without a lock). A bad
//! file never replaces a good running policy: the error is logged with
//! path:line:column, kept for the status views, and the old policy stays.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;

use super::load::log_warnings;
use super::{MissingKeys, PolicyState, files_fingerprint, load_policy, report_generated};
use crate::clock::Clock;
use crate::config::Config;
use crate::diag::FileErrors;
use crate::metrics::Metrics;

/// The outcome of the last reload attempt, for logs and status views.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub last_ok: Option<u64>,
    pub last_error: Option<(u64, String)>,
    /// Fingerprint of the ACL and key files last tried (good or bad).
    fingerprint: u64,
}

/// The policy in force and how to reload it.
pub struct LivePolicy {
    current: ArcSwap<PolicyState>,
    status: Mutex<ReloadStatus>,
    config: Arc<Config>,
    /// The zones ACLs may name.
    zones: Vec<Name>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

fn missing_keys_mode(config: &Config) -> MissingKeys {
    if config.generate_missing_keys {
        MissingKeys::Generate
    } else {
        MissingKeys::Error
    }
}

impl LivePolicy {
    /// Load the policy at start: any error is fatal here (there is no
    /// previous policy to fall back on).
    pub fn load(
        config: Arc<Config>,
        zones: Vec<Name>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, FileErrors> {
        let policy = load_policy(&config, &zones, missing_keys_mode(&config))?;
        report_generated(&policy);
        log_warnings(&policy);
        let fingerprint = files_fingerprint(&[&config.acl_dir, &config.keys_dir]);
        Ok(Self {
            current: ArcSwap::from_pointee(policy),
            status: Mutex::new(ReloadStatus {
                last_ok: Some(clock.now()),
                last_error: None,
                fingerprint,
            }),
            config,
            zones,
            clock,
            metrics,
        })
    }

    /// The policy in force (lock-free). One request holds one snapshot
    /// from TSIG verification to the ACL check.
    pub fn get(&self) -> Arc<PolicyState> {
        self.current.load_full()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reload ACLs and keys. On any error the running policy stays and every
    /// error is logged with path:line:column. `force` reloads even when the
    /// files look unchanged (SIGHUP). Blocking (reads files).
    pub fn reload(&self, force: bool) -> Result<bool, FileErrors> {
        let dirs = [&self.config.acl_dir, &self.config.keys_dir];
        let fp = files_fingerprint(&dirs.map(|d| d.as_path()));
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if !force && fp == status.fingerprint {
            return Ok(false);
        }
        status.fingerprint = fp;
        let now = self.clock.now();
        match load_policy(&self.config, &self.zones, missing_keys_mode(&self.config)) {
            Ok(p) => {
                report_generated(&p);
                log_warnings(&p);
                tracing::info!(
                    machines = p.policy.machines().len(),
                    keys = p.keys.len(),
                    "policy reloaded"
                );
                self.current.store(Arc::new(p));
                self.metrics.acl_reloads.inc(&["ok"]);
                status.last_ok = Some(now);
                status.last_error = None;
                // key generation changed the directory: remember the new state
                status.fingerprint = files_fingerprint(&dirs.map(|d| d.as_path()));
                Ok(true)
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(error = %e, "policy reload failed; the previous policy stays in force");
                }
                status.last_error = Some((now, errors.to_string()));
                self.metrics.acl_reloads.inc(&["failed"]);
                Err(errors)
            }
        }
    }
}
