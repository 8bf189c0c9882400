//! Operations the server runs on an operator's behalf (the HTTP API):
//! removing a subscription by name, and the totals and per-topic views a
//! metrics scrape reads.

use super::*;

fn unsubscribed(log: &[Change]) -> Vec<(String, String)> {
    log.iter()
        .filter_map(|c| match c {
            Change::Unsubscribed { subscriber, topic } => {
                Some((subscriber.to_string(), topic.to_string()))
            }
            _ => None,
        })
        .collect()
}

fn remove(w: &mut World, topic: &str, name: &str) -> String {
    let mut fx = Effects::new();
    w.broker
        .remove_subscription(ConnId(500), topic, name, &mut fx);
    let outputs = w.settle(fx);
    replies(&outputs).join("|")
}

#[test]
fn removing_an_idle_durable_subscription_drops_its_queue_and_logs_it() {
    let mut w = World::new();
    w.run(1, "create jobs");
    w.run(1, "name alice");
    w.run(1, "sub jobs");
    w.disconnect(1);
    w.run(9, &pub_line("jobs", "a", 0));
    assert_eq!(w.stats("jobs")["pending"], 1);
    assert_eq!(remove(&mut w, "jobs", "alice"), "+OK unsubscribed jobs");
    assert_eq!(unsubscribed(&w.log), vec![("alice".into(), "jobs".into())]);
    let s = w.stats("jobs");
    assert_eq!(s["subscribers"], 0);
    assert_eq!(s["pending"], 0);
    // The id is free again, and a replay agrees the subscription is gone.
    assert_eq!(
        w.reply(9, &pub_line("jobs", "a", 0)),
        "+OK published jobs a"
    );
    assert_eq!(view(&replayed(&w.log)), vec![("jobs".into(), vec![])]);
}

#[test]
fn removing_a_group_without_members_works_and_with_members_is_bad_state() {
    let mut w = World::new();
    w.run(1, "create jobs");
    w.run(1, "sub jobs group=workers");
    w.run(9, &pub_line("jobs", "a", 0));
    let reply = remove(&mut w, "jobs", "workers");
    assert!(reply.starts_with("-ERR bad_state "), "{reply}");
    assert_eq!(w.stats("jobs")["subscribers"], 1);
    assert!(unsubscribed(&w.log).is_empty());
    w.disconnect(1);
    assert_eq!(remove(&mut w, "jobs", "workers"), "+OK unsubscribed jobs");
    assert_eq!(w.stats("jobs")["subscribers"], 0);
    assert_eq!(
        unsubscribed(&w.log),
        vec![("workers".into(), "jobs".into())]
    );
}

#[test]
fn a_durable_subscriber_whose_name_is_held_is_bad_state_even_before_its_sub() {
    let mut w = World::new();
    w.run(1, "create jobs");
    w.run(1, "name alice");
    w.run(1, "sub jobs");
    w.disconnect(1);
    // Reconnected and named, but not subscribed again yet: it may still
    // `ack` its queue (version 1), so it holds it.
    w.run(2, "name alice");
    let reply = remove(&mut w, "jobs", "alice");
    assert!(reply.starts_with("-ERR bad_state "), "{reply}");
    w.disconnect(2);
    assert_eq!(remove(&mut w, "jobs", "alice"), "+OK unsubscribed jobs");
}

#[test]
fn removing_what_does_not_exist_is_not_subscribed() {
    let mut w = World::new();
    for (topic, name) in [("nope", "alice"), ("jobs", "alice"), ("jobs", "~1")] {
        w.run(1, "create jobs");
        w.run(1, "sub jobs");
        let reply = remove(&mut w, topic, name);
        assert!(
            reply.starts_with("-ERR not_subscribed "),
            "{topic} {name}: {reply}"
        );
    }
    assert!(unsubscribed(&w.log).is_empty());
}

#[test]
fn totals_add_up_every_topic_and_all_topic_stats_lists_each() {
    let mut w = World::new();
    w.run(1, "create a");
    w.run(1, "create b");
    w.run(1, "sub a 10");
    w.run(2, "sub b 10");
    w.run(9, &pub_line("a", "1", 0));
    w.run(9, &pub_line("a", "1", 0));
    w.run(9, &pub_line("b", "1", 0));
    w.run(9, &pub_line("b", "2", 0));
    w.run(2, "ack b 1");
    let t = w.broker.totals();
    assert_eq!(
        (t.published, t.duplicates, t.delivered, t.acked),
        (3, 1, 3, 1)
    );
    let mut all = w.broker.all_topic_stats();
    all.sort_by(|x, y| x.0.cmp(&y.0));
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_ref()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(all[1].1.in_flight, 1);
    assert_eq!(all[1].1, w.broker.topic_stats("b").unwrap());
    assert!(w.broker.has_topic("a") && !w.broker.has_topic("c"));
}
