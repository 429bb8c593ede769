//! The async_nexus demo, ported: a filter consuming ids below 5, typed handlers, a
//! fanout, a default handler, two pull converters, a producer, a count-down timer, a
//! one-shot "teapot" timer and an ad-hoc event. Finishes on its own within a few seconds.
//!
//! `cargo run --example nexus_demo`

use std::time::Duration;

use ventus::{Converter, EventFactory, Fanout, Nexus, NexusEvent, Timer, TimerKind};

/// A pull source (async_nexus's `DemoEventConverter`): one event every 20 ms, ten in all.
struct DemoConverter {
    event_type: i64,
    left: u32,
}

impl Converter for DemoConverter {
    fn obtain_event(&mut self, factory: &EventFactory) -> Option<NexusEvent> {
        if self.left == 0 {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
        self.left -= 1;
        factory
            .create_event(format!("converter {}", self.event_type), self.event_type)
            .ok()
    }
}

fn main() {
    let mut nexus = Nexus::builder()
        .name("demo")
        .on_error(|error| println!("error: {error}"))
        .build()
        .expect("a poll");
    nexus.add_filter(|event, _| {
        let consume = event.id() < 5;
        if consume {
            println!("filtered out id {}", event.id());
        }
        consume
    });
    nexus
        .on(1, |event, _| println!("first handler: {event:?}"))
        .unwrap();
    nexus
        .on(2, |event, _| println!("second handler: {event:?}"))
        .unwrap();
    let mut fanout = Fanout::<String>::new();
    fanout.register(|event: NexusEvent, _: &mut ventus::Context<'_>| {
        println!("fanout a: {}", event.payload_ref::<String>().unwrap())
    });
    fanout.register(|event: NexusEvent, _: &mut ventus::Context<'_>| {
        println!("fanout b: {}", event.payload_ref::<String>().unwrap())
    });
    nexus.add_handler(50, fanout).unwrap();
    nexus
        .on(98, |event, _| {
            println!("countdown: {}", event.payload_ref::<u64>().unwrap())
        })
        .unwrap();
    nexus
        .on(99, |event, cx| {
            println!("teapot ID: {}", event.id());
            // The demo ends with the teapot.
            cx.stop();
        })
        .unwrap();
    nexus
        .set_default(|event, _| println!("default handler: {event:?}"))
        .unwrap();
    nexus.add_converter(DemoConverter {
        event_type: 1,
        left: 10,
    });
    nexus.add_converter(DemoConverter {
        event_type: 2,
        left: 10,
    });
    nexus.add_timer(Timer::new(Duration::from_millis(300), TimerKind::CountDown, 5, 98).unwrap());
    nexus.add_timer(Timer::one_shot(Duration::from_secs(2), 99).unwrap());
    let producer = nexus.producer();
    let factory = nexus.factory();
    let handle = nexus.start().expect("a thread");
    for n in 0..5 {
        let event = factory.create_event(format!("hi {n}"), 50).unwrap();
        producer.push(event).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    producer
        .push(NexusEvent::new(1001, 77, "an ad-hoc event nobody types"))
        .unwrap();
    let nexus = handle.join().expect("the loop");
    println!("{:?}", nexus.stats());
}
