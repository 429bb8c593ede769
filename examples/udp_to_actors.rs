//! Sockets drive actors: a nexus reads datagrams from a UDP socket on 127.0.0.1 (edge-
//! triggered, drained in bounded batches) and forwards each one into an actor. The sender
//! is a thread of this example; it ends with a "bye" datagram, and the example finishes
//! on its own.
//!
//! `cargo run --example udp_to_actors`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ventus::{Actors, Datagram, Emitter, Forwarder, Linker, Nexus, Overflow, Runtime};

/// What the actor receives: the datagram's text.
#[derive(Debug)]
struct Line(String);

fn main() {
    let runtime = Runtime::builder().workers(1).build().expect("a runtime");
    let linker = Linker::new();
    let bytes = Arc::new(AtomicU64::new(0));
    let b = bytes.clone();
    let _sub = linker
        .on::<Line>()
        .call(move |line: &Line| {
            b.fetch_add(line.0.len() as u64, Ordering::Relaxed);
            println!("actor: {}", line.0);
        })
        .unwrap();
    let emitter = Emitter::new(&linker, Actors::new(&runtime));

    let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).expect("a socket");
    let address = socket.local_addr().unwrap();
    let mut nexus = Nexus::new().expect("a poll");
    nexus.add_udp(socket, "udp");
    nexus
        .on("udp", |event, cx| {
            let datagram = event.into_payload::<Datagram>().unwrap();
            let text = String::from_utf8_lossy(&datagram.data).into_owned();
            if text == "bye" {
                cx.stop();
            } else {
                cx.push(cx.factory().create_typed(Line(text)));
            }
        })
        .unwrap();
    nexus
        .add_handler(
            ventus::EventType::of::<Line>(),
            Forwarder::<Line>::new(emitter, Overflow::Retry { retries: 100 }),
        )
        .unwrap();

    // A datagram can be lost even on 127.0.0.1: never wait for "bye" longer than 10 s.
    nexus.add_timer(ventus::Timer::one_shot(Duration::from_secs(10), "give up").unwrap());
    nexus.on("give up", |_, cx| cx.stop()).unwrap();

    let sender = std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a sender");
        for n in 0..10 {
            socket
                .send_to(format!("datagram {n}").as_bytes(), address)
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        socket.send_to(b"bye", address).unwrap();
    });
    nexus.run().expect("the loop");
    sender.join().unwrap();
    runtime.wait_idle().unwrap();
    println!("the actor saw {} bytes", bytes.load(Ordering::Relaxed));
}
