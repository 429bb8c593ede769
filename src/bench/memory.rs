//! Memory: RSS growth per subscription, never used and used once (then idle), measured
//! in a child process of this same executable so that the parent's allocations do not
//! blur the figure; against crossbeam unbounded channels (one per subscription).

use std::hint::black_box;
use std::process::Command;

use ventus::{Actors, Emitter, Linker};

use super::report::{Kind, Row};
use super::topology::runtime;
use super::{Ctx, Res};

/// Resident set size in bytes, from `/proc/self/statm` (0 where there is none).
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Bytes per subscription (never used, used once) for `n` ventus subscriptions, in
/// linkers of 1000, each on a distinct name.
fn ventus_child(n: usize) -> Res<(f64, f64)> {
    let runtime = runtime()?;
    let per_linker = 1000.min(n).max(1);
    let names: Vec<String> = (0..per_linker).map(|i| format!("k{i}")).collect();
    let before = rss_bytes();
    let linkers: Vec<Linker> = (0..n / per_linker).map(|_| Linker::new()).collect();
    let mut subs = Vec::with_capacity(n);
    for linker in &linkers {
        for name in &names {
            subs.push(linker.on_named(name).call(|_: &u64| {})?);
        }
    }
    let never = rss_bytes();
    let mut delivered = 0usize;
    for linker in &linkers {
        let emitter = Emitter::new(linker, Actors::new(&runtime));
        for name in &names {
            delivered += emitter
                .emit_named(name, 1u64)
                .map_err(|e| format!("emit: {e}"))?
                .delivered;
        }
    }
    runtime.wait_idle()?;
    let used = rss_bytes();
    let handled: u64 = subs.iter().map(|s| s.stats().invoked).sum();
    if delivered != subs.len() || handled != subs.len() as u64 {
        return Err(format!("{delivered} delivered, {handled} handled of {}", subs.len()).into());
    }
    black_box(&subs);
    let per = |bytes: u64| bytes as f64 / subs.len() as f64;
    Ok((
        per(never.saturating_sub(before)),
        per(used.saturating_sub(before)),
    ))
}

/// The same for `n` crossbeam unbounded channels (sender and receiver kept).
fn crossbeam_child(n: usize) -> Res<(f64, f64)> {
    let before = rss_bytes();
    let channels: Vec<_> = (0..n)
        .map(|_| crossbeam_channel::unbounded::<u64>())
        .collect();
    let never = rss_bytes();
    let mut received = 0u64;
    for (tx, rx) in &channels {
        tx.send(1)?;
        received += rx.recv()?;
    }
    let used = rss_bytes();
    if received != n as u64 {
        return Err(format!("{received} of {n} received").into());
    }
    black_box(&channels);
    let per = |bytes: u64| bytes as f64 / n as f64;
    Ok((
        per(never.saturating_sub(before)),
        per(used.saturating_sub(before)),
    ))
}

/// In the child: `spec` is `ventus:N` or `crossbeam:N`; prints `never USED` in bytes.
pub(crate) fn child(spec: &str) -> Res<()> {
    let (side, n) = spec.split_once(':').ok_or("expected SIDE:N")?;
    let n: usize = n.parse()?;
    let (never, used) = match side {
        "ventus" => ventus_child(n)?,
        "crossbeam" => crossbeam_child(n)?,
        other => return Err(format!("unknown side {other}").into()),
    };
    println!("{never:.1} {used:.1}");
    Ok(())
}

fn spawn(ctx: &Ctx, side: &str, n: usize) -> Res<(f64, f64)> {
    // `/proc/self/exe` still reaches this program when its file was replaced on disk
    // since it started (a rebuild), where `current_exe` names a deleted path.
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe()?
    };
    let output = Command::new(exe)
        .args(&ctx.child_prefix)
        .arg("--memory-child")
        .arg(format!("{side}:{n}"))
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "memory child {side}:{n} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let mut fields = stdout.split_whitespace().map(str::parse::<f64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(never)), Some(Ok(used))) => Ok((never, used)),
        _ => Err(format!("memory child {side}:{n} printed {stdout:?}").into()),
    }
}

/// RSS growth per subscription, in child processes.
pub(crate) fn memory(ctx: &Ctx, rows: &mut Vec<Row>) -> Res<()> {
    if rss_bytes() == 0 {
        let mut row = Row::new("memory", "never used", "pooled");
        row.unavailable = Some("memory: no /proc/self/statm on this system".to_owned());
        rows.push(row);
        return Ok(());
    }
    let n = ctx.sizes.memory;
    let mut never = Row::new("memory", "never used", "pooled");
    never.kind = Kind::Memory;
    never.events = n as u64;
    let mut used = never.clone();
    used.case = "used once, idle".to_owned();
    // Child processes of a million subscriptions take seconds each, and RSS hardly drifts:
    // at most 3 repetitions.
    let reps = ctx.sizes.reps.min(3);
    for rep in 0..reps {
        ctx.progress(&format!(
            "memory {n} subscriptions: repetition {}/{}",
            rep + 1,
            reps
        ));
        let sides = if rep % 2 == 0 {
            ["ventus", "crossbeam"]
        } else {
            ["crossbeam", "ventus"]
        };
        for side in sides {
            let (a, b) = spawn(ctx, side, n)?;
            let (never_side, used_side) = if side == "ventus" {
                (&mut never.ours, &mut used.ours)
            } else {
                (&mut never.base, &mut used.base)
            };
            never_side.bytes.push(a);
            used_side.bytes.push(b);
        }
    }
    never.check = format!("ok: {n} subscriptions (crossbeam: {n} channels), in a child process");
    used.check = "ok: each handled 1 event (crossbeam: 1 sent and received)".to_owned();
    rows.extend([never, used]);
    Ok(())
}
