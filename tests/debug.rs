//! Debug mode: per-linker and per-emitter flags over the global one, a replaceable sink,
//! and `VENTUS_DEBUG` read once (tested in a child process, never by mutating this
//! process's environment).

use std::process::Command;
use std::sync::{Arc, Mutex};

use ventus::{Emitter, EventKey, Linker};

type Lines = Arc<Mutex<Vec<(String, String)>>>;

fn captured(debug: Option<bool>) -> (Linker, Lines) {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let mut builder = Linker::builder()
        .name("orders")
        .debug_sink(move |linker, line| sink.lock().unwrap().push((linker.into(), line.into())));
    if let Some(on) = debug {
        builder = builder.debug(on);
    }
    (builder.build().unwrap(), lines)
}

#[test]
fn a_debug_linker_writes_subscribe_emit_and_removal_lines_with_its_name() {
    let (linker, lines) = captured(Some(true));
    let sub = linker.on_named("placed").call(|_: &u32| {}).unwrap();
    let emitter = Emitter::inline(&linker);
    assert_eq!(emitter.emit_named("placed", 1u32).unwrap().delivered, 1);
    assert_eq!(emitter.emit_named("cancelled", 1u32).unwrap().delivered, 0);
    assert!(linker.remove(&EventKey::named("placed"), &sub));
    let lines = lines.lock().unwrap();
    assert!(lines.iter().all(|(name, _)| name == "orders"));
    let text: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
    assert!(text[0].starts_with("subscribed #1"), "{text:?}");
    assert_eq!(text[1], "emit \"placed\" to 1 subscription(s)");
    assert_eq!(text[2], "no subscriptions for \"cancelled\"");
    assert_eq!(text[3], "removed #1 from \"placed\"");
    assert_eq!(text.len(), 4);
}

#[test]
fn a_linker_flag_off_writes_nothing_and_an_emitter_flag_overrides_it() {
    let (linker, lines) = captured(Some(false));
    let _sub = linker.on::<u8>().call(|_: &u8| {}).unwrap();
    assert_eq!(Emitter::inline(&linker).emit(1u8).unwrap().delivered, 1);
    assert!(lines.lock().unwrap().is_empty());
    let loud = Emitter::inline(&linker).debug(true);
    assert_eq!(loud.emit(2u8).unwrap().delivered, 1);
    assert_eq!(lines.lock().unwrap().len(), 1);
    assert!(!linker.is_debug());
}

#[test]
fn the_global_flag_applies_to_linkers_without_one() {
    // The only test in this binary that touches the global flag; the others set theirs.
    let (linker, lines) = captured(None);
    ventus::set_global_debug(true);
    assert!(linker.is_debug());
    assert_eq!(Emitter::inline(&linker).emit(1u8).unwrap().delivered, 0);
    ventus::set_global_debug(false);
    assert!(!linker.is_debug());
    assert_eq!(Emitter::inline(&linker).emit(1u8).unwrap().delivered, 0);
    assert_eq!(lines.lock().unwrap().len(), 1);
}

const CHILD: &str = "VENTUS_TEST_DEBUG_CHILD";

#[test]
fn ventus_debug_is_read_from_the_environment_in_a_child_process() {
    if std::env::var_os(CHILD).is_some() {
        // Child mode: report what the environment turned on, and emit to nobody with the
        // default sink (stderr).
        println!("global_debug={}", ventus::global_debug());
        let linker = Linker::builder().name("child").build().unwrap();
        assert_eq!(Emitter::inline(&linker).emit(1u8).unwrap().delivered, 0);
        return;
    }
    let run = |value: Option<&str>| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "ventus_debug_is_read_from_the_environment_in_a_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1");
        match value {
            Some(value) => command.env("VENTUS_DEBUG", value),
            None => command.env_remove("VENTUS_DEBUG"),
        };
        let output = command.output().unwrap();
        assert!(output.status.success());
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run(Some("1"));
    assert!(stdout.contains("global_debug=true"), "{stdout}");
    assert!(
        stderr.contains("ventus [child] no subscriptions for u8"),
        "{stderr}"
    );
    let (stdout, stderr) = run(None);
    assert!(stdout.contains("global_debug=false"), "{stdout}");
    assert!(!stderr.contains("no subscriptions"), "{stderr}");
    let (stdout, _) = run(Some("0"));
    assert!(stdout.contains("global_debug=false"), "{stdout}");
}
