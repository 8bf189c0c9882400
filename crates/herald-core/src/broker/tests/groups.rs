//! Competing consumers (`docs/protocol.md` 12.2).

use super::*;

fn jobs(w: &mut World) {
    w.run(100, "create jobs");
}

#[test]
fn every_event_goes_to_one_member_of_the_group() {
    let mut w = World::new();
    jobs(&mut w);
    assert_eq!(
        w.reply(1, "sub jobs 2 group=workers"),
        "+OK subscribed jobs group=workers"
    );
    w.run(2, "sub jobs 2 group=workers");
    let mut got = vec![];
    for i in 0..4 {
        got.extend(delivered(&w.run(9, &pub_line("jobs", &i.to_string(), 0))));
    }
    // Least in flight, ties in turn: 1, 2, 1, 2.
    let conns: Vec<u64> = got.iter().map(|d| d.0).collect();
    assert_eq!(conns, vec![1, 2, 1, 2]);
    let s = w.stats("jobs");
    assert_eq!(s["subscribers"], 1);
    assert_eq!(s["in_flight"], 4);
    let sub = &s["subscriptions"][0];
    assert_eq!(sub["group"], "workers");
    assert_eq!(sub["members"], 2);
    assert!(sub.get("prefetch").is_none());
}

#[test]
fn the_next_event_goes_to_the_member_with_fewest_in_flight() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs 3 group=g");
    for i in 0..2 {
        w.run(9, &pub_line("jobs", &format!("a{i}"), 0));
    }
    // Member 2 joins with nothing in flight: it gets the next ones.
    w.run(2, "sub jobs 3 group=g");
    let out = w.run(9, &pub_line("jobs", "b", 0));
    assert_eq!(delivered(&out)[0].0, 2);
}

#[test]
fn priority_order_is_kept_across_the_group() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs 1 group=g");
    w.run(2, "sub jobs 1 group=g");
    w.run(9, &pub_line("jobs", "busy1", 0));
    w.run(9, &pub_line("jobs", "busy2", 0));
    w.run(9, &pub_line("jobs", "low", 1));
    w.run(9, &pub_line("jobs", "high", 9));
    // Whichever member frees a slot first gets the best event.
    let out = w.run(2, "ack jobs busy2");
    assert_eq!(delivered(&out), vec![(2, "high".into(), 1)]);
    let out = w.run(1, "ack jobs busy1");
    assert_eq!(delivered(&out), vec![(1, "low".into(), 1)]);
}

#[test]
fn a_member_that_leaves_returns_its_events_to_the_group() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs 1 group=g");
    w.run(2, "sub jobs 1 group=g");
    w.run(9, &pub_line("jobs", "a", 0));
    w.run(9, &pub_line("jobs", "b", 0));
    w.run(9, &pub_line("jobs", "c", 0));
    // 1 holds a, 2 holds b. 1 dies: a goes to... nobody free; 2 acks b and
    // gets a back (its place is before c), flagged.
    w.disconnect(1);
    let out = w.run(2, "ack jobs b");
    assert_eq!(delivered(&out), vec![(2, "a".into(), 2)]);
    // unsub from a group returns too, and keeps the group.
    assert_eq!(w.reply(2, "unsub jobs"), "+OK unsubscribed jobs");
    let s = w.stats("jobs");
    assert_eq!(s["subscribers"], 1);
    assert_eq!(
        (s["pending"].as_u64(), s["in_flight"].as_u64()),
        (Some(2), Some(0))
    );
    // The group kept queueing while empty; a new member gets a, then c.
    let out = w.run(3, "sub jobs 5 group=g");
    assert_eq!(ids(&out), vec!["a", "c"]);
}

#[test]
fn members_ack_their_own_in_flight_events_or_queued_ones() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs 1 group=g");
    w.run(2, "sub jobs 1 group=g");
    w.run(9, &pub_line("jobs", "a", 0));
    w.run(9, &pub_line("jobs", "b", 0));
    w.run(9, &pub_line("jobs", "c", 0));
    // b is in flight at 2: not 1's to ack.
    assert!(w.reply(1, "ack jobs b").starts_with("-ERR no_event"));
    assert!(w.reply(1, "nack jobs b").starts_with("-ERR no_event"));
    // c is queued in the group: any member may ack it.
    assert_eq!(w.reply(1, "ack jobs c"), "+OK acked jobs c");
    assert_eq!(w.reply(1, "ack jobs a"), "+OK acked jobs a");
}

#[test]
fn deleting_a_group_stops_its_members() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs 1 group=g");
    w.run(9, &pub_line("jobs", "a", 0));
    assert!(
        w.reply(3, "unsub jobs group=nope")
            .starts_with("-ERR not_subscribed")
    );
    assert!(
        w.reply(3, "unsub nope group=g")
            .starts_with("-ERR not_subscribed")
    );
    assert_eq!(w.reply(3, "unsub jobs group=g"), "+OK unsubscribed jobs");
    assert!(w.reply(1, "ack jobs a").starts_with("-ERR not_subscribed"));
    assert!(ids(&w.run(9, &pub_line("jobs", "b", 0))).is_empty());
    assert_eq!(w.stats("jobs")["subscribers"], 0);
    assert!(
        w.log
            .iter()
            .any(|c| matches!(c, Change::Unsubscribed { subscriber, .. } if &**subscriber == "g"))
    );
}

#[test]
fn option_rules_of_a_group() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs group=g wait=30s");
    // Same options (in other units), other prefetch: fine.
    assert_eq!(
        w.reply(2, "sub jobs 4 group=g wait=30000ms"),
        "+OK subscribed jobs group=g wait=30000"
    );
    // Other options while members are connected: refused.
    assert!(
        w.reply(3, "sub jobs group=g wait=5s")
            .starts_with("-ERR bad_state")
    );
    assert!(w.reply(3, "sub jobs group=g").starts_with("-ERR bad_state"));
    // Once alone, a member restates the options.
    w.disconnect(2);
    assert_eq!(
        w.reply(1, "sub jobs group=g wait=5s"),
        "+OK subscribed jobs group=g wait=5000"
    );
    w.disconnect(1);
    assert_eq!(
        w.reply(3, "sub jobs group=g"),
        "+OK subscribed jobs group=g"
    );
}

#[test]
fn one_subscription_per_topic_per_connection_and_one_namespace() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs");
    assert!(w.reply(1, "sub jobs group=g").starts_with("-ERR bad_state"));
    w.run(2, "sub jobs group=g");
    assert!(w.reply(2, "sub jobs").starts_with("-ERR bad_state"));
    assert!(w.reply(2, "sub jobs group=h").starts_with("-ERR bad_state"));
    // A durable subscriber x on jobs, and a group x on jobs, cannot both be.
    w.run(3, "name x");
    w.run(3, "sub jobs");
    assert!(w.reply(4, "sub jobs group=x").starts_with("-ERR bad_state"));
    w.run(5, "name g");
    assert!(w.reply(5, "sub jobs").starts_with("-ERR bad_state"));
    // A group joined by a named connection is still the group.
    w.run(6, "name worker-6");
    assert_eq!(
        w.reply(6, "sub jobs group=g"),
        "+OK subscribed jobs group=g"
    );
}

#[test]
fn a_group_is_durable_and_dump_lists_it_under_its_name() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs group=g max_deliveries=3");
    w.disconnect(1);
    w.run(9, &pub_line("jobs", "a", 0));
    let b = replayed(&w.log);
    assert_eq!(
        view(&b),
        vec![("jobs".into(), vec![("g".into(), vec!["a".into()])])]
    );
    assert_eq!(view(&b), view(&w.broker));
}

#[test]
fn a_pending_id_in_a_group_queue_makes_a_publish_a_duplicate() {
    let mut w = World::new();
    jobs(&mut w);
    w.run(1, "sub jobs group=g");
    w.run(9, &pub_line("jobs", "a", 0));
    assert_eq!(
        w.reply(9, &pub_line("jobs", "a", 0)),
        "+OK duplicate jobs a"
    );
}
