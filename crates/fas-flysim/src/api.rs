//! Machines API handlers (REST).

use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::server::{Reply, Req, Route, Shared};
use crate::world::{Machine, NewMachine, World};

/// States in which the VM is (or is about to be) running.
const RUNNING: &[&str] = &["started", "starting", "replacing", "stopping", "suspending"];

/// Default lease TTL when the request gives none, in seconds.
const DEFAULT_LEASE_TTL: u64 = 30;

/// Handle every REST route except `wait` (the world is locked and advanced to `now`).
pub(crate) fn handle(w: &mut World, route: &Route, req: &Req, now: Instant) -> Reply {
    match route {
        Route::ListApps => list_apps(w, req),
        Route::GetApp { app } => get_app(w, app),
        Route::List { app } => list(w, app, req, now),
        Route::Create { app } => create(w, app, req, now),
        Route::Get { app, id } => with_machine(w, app, id, now, |w, m| {
            Reply::json(200, w.machine_json(m, req.flag("include_leases"), now))
        }),
        Route::Destroy { app, id } => mutate(w, app, id, req, now, destroy),
        Route::Action { app, id, action } => match action.as_str() {
            "start" => mutate(w, app, id, req, now, start),
            "stop" => mutate(w, app, id, req, now, stop),
            "suspend" => mutate(w, app, id, req, now, suspend),
            "cordon" => mutate(w, app, id, req, now, |w, a, i, r, n| {
                cordon(w, a, i, r, n, true)
            }),
            _ => mutate(w, app, id, req, now, |w, a, i, r, n| {
                cordon(w, a, i, r, n, false)
            }),
        },
        Route::LeaseGet { app, id } => {
            with_machine(w, app, id, now, |w, m| match m.active_lease(now) {
                Some(l) => Reply::json(200, w.lease_json(l)),
                None => Reply::error(404, "lease not found"),
            })
        }
        Route::LeaseAcquire { app, id } => lease_acquire(w, app, id, req, now),
        Route::LeaseRelease { app, id } => lease_release(w, app, id, req, now),
        Route::Wait { .. } | Route::Graphql | Route::Unknown => Reply::error(404, "not found"),
    }
}

fn app_not_found() -> Reply {
    Reply::error(404, "app not found")
}

fn machine_not_found() -> Reply {
    Reply::error(404, "machine not found")
}

/// Look up a visible machine (404 for unknown apps, unknown ids and destroyed machines past their window).
fn find<'w>(w: &'w World, app: &str, id: &str, now: Instant) -> Result<&'w Machine, Reply> {
    let a = w.apps.get(app).ok_or_else(app_not_found)?;
    let m = a.machines.get(id).ok_or_else(machine_not_found)?;
    if w.is_gone(m, now) {
        return Err(machine_not_found());
    }
    Ok(m)
}

fn with_machine(
    w: &World,
    app: &str,
    id: &str,
    now: Instant,
    f: impl FnOnce(&World, &Machine) -> Reply,
) -> Reply {
    match find(w, app, id, now) {
        Ok(m) => f(w, m),
        Err(r) => r,
    }
}

/// Common checks of every mutation: the machine exists, the lease nonce matches, the host is reachable.
fn mutate(
    w: &mut World,
    app: &str,
    id: &str,
    req: &Req,
    now: Instant,
    f: impl FnOnce(&mut World, &str, &str, &Req, Instant) -> Reply,
) -> Reply {
    let m = match find(w, app, id, now) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Some(l) = m.active_lease(now)
        && req.nonce.as_deref() != Some(l.nonce.as_str())
    {
        return Reply::error(409, &w.lease_held_message(id, l));
    }
    if m.host_status != "ok" {
        return Reply::error(
            503,
            &format!("unavailable: host for machine {id} is {}", m.host_status),
        );
    }
    f(w, app, id, req, now)
}

fn state_of(w: &World, app: &str, id: &str) -> String {
    w.apps
        .get(app)
        .and_then(|a| a.machines.get(id))
        .map(|m| m.state.clone())
        .unwrap_or_default()
}

fn precondition(verb: &str, state: &str) -> Reply {
    Reply::error(
        412,
        &format!("failed_precondition: unable to {verb} machine from current state: '{state}'"),
    )
}

fn start(w: &mut World, app: &str, id: &str, _req: &Req, now: Instant) -> Reply {
    if w.cfg.faults.failing_starts.contains(id) {
        w.count_fault("failing_start");
        return Reply::error(
            500,
            &format!("internal: failed to start machine {id}: injected start failure"),
        );
    }
    let prev = state_of(w, app, id);
    let body = json!({"previous_state": prev, "migrated": false, "new_host": ""});
    match prev.as_str() {
        "stopped" | "suspended" | "created" | "failed" => {
            let d = w.sample(w.cfg.timing.starting);
            let first_boot_fails = w
                .apps
                .get_mut(app)
                .and_then(|a| a.machines.get_mut(id))
                .is_some_and(|m| std::mem::take(&mut m.fails_first_boot));
            let booted = if first_boot_fails {
                w.count_fault("boot_failure");
                "failed"
            } else {
                "started"
            };
            w.transition(app, id, now, "starting", &[(d, booted)], "user");
            Reply::json(200, body)
        }
        "started" | "starting" | "replacing" if w.cfg.outcomes.start_when_running_is_noop => {
            Reply::json(200, body)
        }
        other => precondition("start", other),
    }
}

fn stop(w: &mut World, app: &str, id: &str, req: &Req, now: Instant) -> Reply {
    if !req.body.iter().all(u8::is_ascii_whitespace)
        && serde_json::from_slice::<Value>(&req.body).is_err()
    {
        return Reply::error(400, "invalid stop request body: not JSON");
    }
    let prev = state_of(w, app, id);
    match prev.as_str() {
        "started" | "starting" | "replacing" => {
            let d = w.sample(w.cfg.timing.stopping);
            w.transition(app, id, now, "stopping", &[(d, "stopped")], "user");
            Reply::ok()
        }
        "suspended" | "created" | "failed" => {
            w.transition(app, id, now, "stopped", &[], "user");
            Reply::ok()
        }
        "stopped" if w.cfg.outcomes.stop_when_stopped_fails => precondition("stop", "stopped"),
        "stopped" | "stopping" => Reply::ok(),
        other => precondition("stop", other),
    }
}

fn suspend(w: &mut World, app: &str, id: &str, _req: &Req, now: Instant) -> Reply {
    let prev = state_of(w, app, id);
    match prev.as_str() {
        "started" => {
            let d = w.sample(w.cfg.timing.suspending);
            w.transition(app, id, now, "suspending", &[(d, "suspended")], "user");
            Reply::ok()
        }
        "suspended" | "suspending" => Reply::ok(),
        other => precondition("suspend", other),
    }
}

fn destroy(w: &mut World, app: &str, id: &str, req: &Req, now: Instant) -> Reply {
    let force = req.flag("force") || req.flag("kill");
    let prev = state_of(w, app, id);
    if prev == "destroying" || prev == "destroyed" {
        return Reply::ok();
    }
    if RUNNING.contains(&prev.as_str()) && !force && !w.cfg.outcomes.destroy_running_without_force {
        return Reply::error(
            412,
            &format!(
                "failed_precondition: unable to destroy machine from current state: '{prev}' \
                 (stop it first or use force=true)"
            ),
        );
    }
    let d = w.sample(w.cfg.timing.destroying);
    w.transition(app, id, now, "destroying", &[(d, "destroyed")], "user");
    if let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
        m.lease = None;
    }
    Reply::ok()
}

fn cordon(w: &mut World, app: &str, id: &str, _req: &Req, _now: Instant, on: bool) -> Reply {
    let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) else {
        return machine_not_found();
    };
    if m.state == "destroyed" || m.state == "destroying" {
        let verb = if on { "cordon" } else { "uncordon" };
        return precondition(verb, &m.state.clone());
    }
    m.cordoned = on;
    Reply::ok()
}

fn list(w: &World, app: &str, req: &Req, now: Instant) -> Reply {
    let Some(a) = w.apps.get(app) else {
        return app_not_found();
    };
    let include_deleted = req.flag("include_deleted");
    let include_leases = req.flag("include_leases");
    let states: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "state")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let region = req.param("region");
    let metadata: Vec<(&str, &str)> = req
        .query
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("metadata.").map(|k| (k, v.as_str())))
        .collect();
    let out: Vec<Value> = a
        .machines
        .values()
        .filter(|m| m.listed_after <= now)
        .filter(|m| include_deleted || m.state != "destroyed")
        .filter(|m| states.is_empty() || states.contains(&m.state.as_str()))
        .filter(|m| region.is_none_or(|r| r == m.region))
        .filter(|m| {
            metadata.iter().all(|(k, v)| {
                m.config
                    .get("metadata")
                    .and_then(|md| md.get(*k))
                    .and_then(Value::as_str)
                    == Some(*v)
            })
        })
        .map(|m| w.machine_json(m, include_leases, now))
        .collect();
    Reply::json(200, Value::Array(out))
}

fn create(w: &mut World, app: &str, req: &Req, now: Instant) -> Reply {
    if !w.apps.contains_key(app) {
        return app_not_found();
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Reply::error(400, "invalid create request: body must be a JSON object"),
        Err(e) => return Reply::error(400, &format!("invalid create request: {e}")),
    };
    let config = match body.get("config") {
        Some(c @ Value::Object(_)) => c.clone(),
        _ => return Reply::error(400, "invalid create request: config is required"),
    };
    if config
        .get("image")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Reply::error(400, "invalid config.image: image is required");
    }
    let region = match body.get("region").and_then(Value::as_str) {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => w.cfg.default_region.clone(),
    };
    let skip_launch = body
        .get("skip_launch")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let lease_ttl = body
        .get("lease_ttl")
        .and_then(Value::as_u64)
        .filter(|t| *t > 0);
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);

    if w.cfg.faults.capacity_exhausted_regions.contains(&region) {
        return Reply::json(
            412,
            json!({
                "error": format!(
                    "could not reserve resource for machine: insufficient memory available to fulfill request in {region}"
                ),
                "status": "insufficient_capacity",
            }),
        );
    }
    if let Some(quota) = w.cfg.faults.machine_quota {
        let existing = w.apps.get(app).map_or(0, |a| {
            a.machines
                .values()
                .filter(|m| m.state != "destroyed")
                .count()
        });
        if existing >= quota {
            let unit = if quota == 1 { "machine" } else { "machines" };
            return Reply::error(
                422,
                &format!("To create more than {quota} {unit} per app please add a payment method"),
            );
        }
    }

    let spec = NewMachine {
        name,
        state: "created".to_owned(),
        region,
        config,
        host_status: "ok".to_owned(),
        list_lag_ms: w.cfg.faults.list_lag_ms,
    };
    let id = w.insert_machine(app, spec, now);
    let t = w.cfg.timing.clone();
    let created = w.sample(t.created);
    let p = w.cfg.faults.boot_failure_probability.clamp(0.0, 1.0);
    let fails_boot = p > 0.0 && w.rng.random_bool(p);
    let chain: Vec<(Duration, &str)> = if skip_launch {
        if fails_boot && let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(&id)) {
            m.fails_first_boot = true;
        }
        vec![(created, "stopped")]
    } else {
        let starting = w.sample(t.starting);
        let booted = if fails_boot {
            w.count_fault("boot_failure");
            "failed"
        } else {
            "started"
        };
        vec![(created, "starting"), (starting, booted)]
    };
    let lease = lease_ttl.map(|ttl| {
        let owner = w.cfg.lease_owner.clone();
        w.new_lease(now, Duration::from_secs(ttl), &owner, "")
    });
    let nonce = lease.as_ref().map(|l| l.nonce.clone());
    if let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(&id)) {
        let mut at = now;
        for (d, st) in chain {
            at += d;
            m.pending.push_back((at, st.to_owned()));
        }
        m.lease = lease;
    }
    let Some(m) = w.apps.get(app).and_then(|a| a.machines.get(&id)) else {
        return machine_not_found();
    };
    let mut out = w.machine_json(m, false, now);
    if let (Some(n), Some(o)) = (nonce, out.as_object_mut()) {
        o.insert("nonce".to_owned(), Value::String(n));
    }
    Reply::json(200, out)
}

fn lease_acquire(w: &mut World, app: &str, id: &str, req: &Req, now: Instant) -> Reply {
    let m = match find(w, app, id, now) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let ttl = body
        .get("ttl")
        .and_then(Value::as_u64)
        .or_else(|| req.param("ttl").and_then(|t| t.parse().ok()))
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_LEASE_TTL);
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(l) = m.active_lease(now) {
        if req.nonce.as_deref() != Some(l.nonce.as_str()) {
            return Reply::error(409, &w.lease_held_message(id, l));
        }
        // Refresh with the matching nonce.
        let mut l = l.clone();
        l.expires = now + Duration::from_secs(ttl);
        let out = w.lease_json(&l);
        if let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
            m.lease = Some(l);
        }
        return Reply::json(201, out);
    }
    let owner = w.cfg.lease_owner.clone();
    let l = w.new_lease(now, Duration::from_secs(ttl), &owner, &description);
    let out = w.lease_json(&l);
    if let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
        m.lease = Some(l);
    }
    Reply::json(201, out)
}

fn lease_release(w: &mut World, app: &str, id: &str, req: &Req, now: Instant) -> Reply {
    let m = match find(w, app, id, now) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(l) = m.active_lease(now) else {
        return Reply::error(404, "lease not found");
    };
    if req.nonce.as_deref() != Some(l.nonce.as_str()) {
        return Reply::error(409, &w.lease_held_message(id, l));
    }
    if let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
        m.lease = None;
    }
    Reply::json(200, json!({"status": "success", "data": {"ok": true}}))
}

fn app_json(w: &World, name: &str) -> Option<Value> {
    let a = w.apps.get(name)?;
    let org = w.orgs.get(&a.org_slug)?;
    let count = a
        .machines
        .values()
        .filter(|m| m.state != "destroyed")
        .count();
    Some(json!({
        "id": a.id, "name": a.name, "machine_count": count, "volume_count": 0, "network": "default",
        "status": "deployed", "internal_numeric_id": a.numeric_id,
        "organization": {"name": org.name, "slug": org.slug, "internal_numeric_id": org.numeric_id},
    }))
}

fn get_app(w: &World, app: &str) -> Reply {
    match app_json(w, app) {
        Some(v) => Reply::json(200, v),
        None => app_not_found(),
    }
}

fn list_apps(w: &World, req: &Req) -> Reply {
    let Some(slug) = req.param("org_slug").filter(|s| !s.is_empty()) else {
        return Reply::error(400, "org_slug is required");
    };
    if !w.orgs.contains_key(slug) {
        return Reply::error(404, &format!("organization not found: {slug}"));
    }
    let apps: Vec<Value> = w
        .apps
        .values()
        .filter(|a| a.org_slug == slug)
        .filter_map(|a| app_json(w, &a.name))
        .collect();
    Reply::json(200, json!({"total_apps": apps.len(), "apps": apps}))
}

/// `GET …/wait`: block until the machine reaches one of the requested states, or 408 at the timeout.
pub(crate) async fn wait(shared: &Shared, app: &str, id: &str, req: &Req) -> Reply {
    let mut states: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k == "state")
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if states.is_empty() {
        states.push("started".to_owned());
    }
    const VALID: &[&str] = &[
        "started",
        "stopped",
        "suspended",
        "destroyed",
        "failed",
        "settled",
    ];
    if let Some(bad) = states.iter().find(|s| !VALID.contains(&s.as_str())) {
        return Reply::error(
            400,
            &format!(
                "invalid state {bad:?}: expected one of {}",
                VALID.join(", ")
            ),
        );
    }
    let has_version = req
        .param("instance_id")
        .or_else(|| req.param("version"))
        .is_some_and(|v| !v.is_empty());
    if states.iter().any(|s| s == "stopped") && !has_version {
        return Reply::error(
            400,
            "instance_id or version is required when waiting for the stopped state",
        );
    }
    let timeout = match req.param("timeout") {
        None => 60,
        Some(t) => match t.trim_end_matches('s').parse::<u64>() {
            Ok(t) if t <= 60 => t,
            Ok(t) => {
                return Reply::error(400, &format!("invalid timeout {t}: maximum is 60 seconds"));
            }
            Err(_) => {
                return Reply::error(
                    400,
                    &format!("invalid timeout {t:?}: expected integer seconds"),
                );
            }
        },
    };
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let notified = shared.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let mut w = shared.lock();
            let now = Instant::now();
            w.advance(app, now);
            let m = match find(&w, app, id, now) {
                Ok(m) => m,
                Err(r) if r.status == 404 && states.iter().any(|s| s == "destroyed") => {
                    // A destroyed machine past its GET window still satisfies a wait for destroyed.
                    match w.apps.get(app).and_then(|a| a.machines.get(id)) {
                        Some(m) => m,
                        None => return r,
                    }
                }
                Err(r) => return r,
            };
            let reached = states.iter().any(|s| {
                s == &m.state
                    || (s == "settled"
                        && [
                            "started",
                            "stopped",
                            "suspended",
                            "failed",
                            "destroyed",
                            "created",
                        ]
                        .contains(&m.state.as_str()))
            });
            if reached {
                return Reply::json(
                    200,
                    json!({"ok": true, "state": m.state, "version": m.instance_id,
                           "event_id": m.events.front().and_then(|e| e.get("id")).cloned()}),
                );
            }
            m.pending.front().map(|(at, _)| *at)
        };
        if Instant::now() >= deadline {
            return Reply::error(408, "deadline_exceeded: timeout waiting for machine state");
        }
        let until = next.map_or(deadline, |n| n.min(deadline));
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = &mut notified => {}
        }
    }
}
