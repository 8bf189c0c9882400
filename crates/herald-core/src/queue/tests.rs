use super::*;
use proptest::prelude::*;

const M: ConnId = ConnId(1);

fn ev(seq: u64, priority: u8, timestamp: u64) -> Arc<Event> {
    Arc::new(Event::new(
        Seq(seq),
        priority,
        timestamp,
        &seq.to_string(),
        br#","msg":"x""#,
    ))
}

fn pop_seq(q: &mut PendingQueue) -> Option<u64> {
    match q.pop(Seq(u64::MAX), None, M, None) {
        Pop::Event { event, .. } => Some(event.seq.0),
        _ => None,
    }
}

fn drain_order(q: &mut PendingQueue, age: Option<u64>) -> Vec<u64> {
    std::iter::from_fn(|| match q.pop(Seq(u64::MAX), age, M, None) {
        Pop::Event { event, .. } => Some(event.seq.0),
        _ => None,
    })
    .collect()
}

#[test]
fn higher_priority_first_then_publish_order() {
    let mut q = PendingQueue::new();
    for (seq, p) in [(1, 0), (2, 5), (3, 4), (4, 5), (5, 255), (6, 0)] {
        q.push(ev(seq, p, 0), None);
    }
    assert_eq!(drain_order(&mut q, None), vec![5, 2, 4, 3, 1, 6]);
    assert_eq!(q.in_flight(), 6);
    assert_eq!(q.queued(), 0);
}

#[test]
fn acked_while_queued_is_never_delivered() {
    let mut q = PendingQueue::new();
    let (a, b) = (ev(1, 1, 0), ev(2, 1, 0));
    q.push(a.clone(), None);
    q.push(b, None);
    assert_eq!(q.remove(&a), Some(EntryState::Queued));
    assert_eq!(q.remove(&a), None);
    assert_eq!(pop_seq(&mut q), Some(2));
    assert_eq!(pop_seq(&mut q), None);
}

#[test]
fn a_non_durable_head_blocks_lower_priorities() {
    let mut q = PendingQueue::new();
    q.push(ev(1, 0, 0), None);
    q.push(ev(2, 9, 0), None);
    assert!(matches!(q.pop(Seq(1), None, M, None), Pop::NotDurable));
    assert_eq!(pop_seq(&mut q), Some(2));
}

#[test]
fn a_returned_event_goes_back_to_its_place_not_the_front_or_the_back() {
    let mut q = PendingQueue::new();
    for seq in 1..=5 {
        q.push(ev(seq, 3, 0), None);
    }
    assert_eq!(pop_seq(&mut q), Some(1));
    assert_eq!(pop_seq(&mut q), Some(2));
    assert_eq!(pop_seq(&mut q), Some(3));
    // 3 comes back first, then 1: each goes to its place, before 4 and 5.
    assert!(q.requeue(Seq(3), None));
    assert!(q.requeue(Seq(1), None));
    assert_eq!(q.queued(), 4);
    let order: Vec<(u64, u32)> = std::iter::from_fn(|| match q.pop(Seq(u64::MAX), None, M, None) {
        Pop::Event { event, deliveries } => Some((event.seq.0, deliveries)),
        _ => None,
    })
    .collect();
    assert_eq!(order, vec![(1, 2), (3, 2), (4, 1), (5, 1)]);
}

#[test]
fn a_higher_priority_arrival_beats_a_returned_event() {
    let mut q = PendingQueue::new();
    q.push(ev(1, 1, 0), None);
    assert_eq!(pop_seq(&mut q), Some(1));
    q.push(ev(2, 7, 0), None);
    q.requeue(Seq(1), None);
    assert_eq!(drain_order(&mut q, None), vec![2, 1]);
}

#[test]
fn a_delayed_event_joins_its_level_behind_the_events_already_there() {
    let mut q = PendingQueue::new();
    let mut counter = 10;
    q.push(ev(1, 2, 0), Some(100));
    q.push(ev(2, 2, 0), None);
    assert_eq!(q.delayed(), 1);
    assert_eq!(q.queued(), 1);
    assert_eq!(q.next_due(), Some(100));
    assert!(q.join_due(99, &mut counter).is_none());
    q.push(ev(3, 2, 50), None);
    assert_eq!(q.join_due(100, &mut counter).map(|e| e.seq.0), Some(1));
    assert_eq!(counter, 11);
    assert_eq!(q.next_due(), None);
    assert_eq!(drain_order(&mut q, None), vec![2, 3, 1]);
}

#[test]
fn acknowledging_a_delayed_event_means_it_is_never_delivered() {
    let mut q = PendingQueue::new();
    let mut counter = 10;
    let e = ev(1, 0, 0);
    q.push(e.clone(), Some(100));
    assert_eq!(q.remove(&e), Some(EntryState::Delayed));
    assert_eq!(q.next_due(), None);
    assert!(q.join_due(1_000, &mut counter).is_none());
    assert_eq!(pop_seq(&mut q), None);
    assert!(q.is_empty());
}

#[test]
fn deadlines_return_in_deadline_order_and_touch_moves_them() {
    let mut q = PendingQueue::new();
    for seq in 1..=3 {
        q.push(ev(seq, 0, 0), None);
    }
    for (seq, deadline) in [(1, 100), (2, 50), (3, 200)] {
        match q.pop(Seq(u64::MAX), None, M, Some(deadline)) {
            Pop::Event { event, .. } => assert_eq!(event.seq.0, seq),
            other => panic!("{other:?}"),
        }
    }
    assert!(q.touch(Seq(2), 300));
    assert_eq!(q.next_deadline(), Some(100));
    assert_eq!(q.expired_deadline(99), None);
    assert_eq!(q.expired_deadline(250), Some(Seq(1)));
    assert_eq!(q.expired_deadline(250), Some(Seq(3)));
    assert_eq!(q.expired_deadline(250), None);
    assert_eq!(q.next_deadline(), Some(300));
    let acked = q.in_flight_entry(Seq(2)).unwrap().event.clone();
    q.remove(&acked);
    assert_eq!(q.next_deadline(), None);
}

#[test]
fn aging_lets_an_old_low_priority_event_pass_a_new_high_one() {
    // age=1s: a priority-0 event that has waited 5 s goes before a
    // priority-4 event that just arrived (13.3).
    let mut q = PendingQueue::new();
    q.push(ev(1, 0, 0), None);
    q.push(ev(2, 4, 5_000), None);
    assert_eq!(drain_order(&mut q, Some(1_000)), vec![1, 2]);
    let mut q = PendingQueue::new();
    q.push(ev(1, 0, 0), None);
    q.push(ev(2, 4, 3_000), None);
    assert_eq!(drain_order(&mut q, Some(1_000)), vec![2, 1]);
    // A tie goes to the higher priority.
    let mut q = PendingQueue::new();
    q.push(ev(1, 0, 0), None);
    q.push(ev(2, 4, 4_000), None);
    assert_eq!(drain_order(&mut q, Some(1_000)), vec![2, 1]);
}

#[test]
fn eviction_takes_the_lowest_priority_oldest_queued_event() {
    let mut q = PendingQueue::new();
    q.push(ev(1, 5, 0), None);
    q.push(ev(2, 1, 0), None);
    q.push(ev(3, 1, 0), None);
    q.push(ev(4, 0, 0), Some(10));
    assert_eq!(pop_seq(&mut q), Some(1));
    assert_eq!(q.evict_lowest().map(|e| e.seq.0), Some(2));
    assert_eq!(q.evict_lowest().map(|e| e.seq.0), Some(3));
    // Then a delayed one; never one in flight.
    assert_eq!(q.evict_lowest().map(|e| e.seq.0), Some(4));
    assert!(q.evict_lowest().is_none());
    assert_eq!(q.len(), 1);
}

#[test]
fn bytes_follow_what_is_held() {
    let mut q = PendingQueue::new();
    let (a, b) = (ev(1, 0, 0), ev(2, 0, 0));
    q.push(a.clone(), None);
    q.push(b.clone(), Some(5));
    assert_eq!(q.bytes(), 6);
    pop_seq(&mut q);
    assert_eq!(q.bytes(), 6);
    q.remove(&a);
    q.remove(&b);
    assert_eq!(q.bytes(), 0);
}

#[test]
fn peek_lists_in_flight_then_queued_in_order_then_delayed_by_due() {
    let mut q = PendingQueue::new();
    q.push(ev(1, 1, 0), None);
    q.push(ev(2, 3, 0), Some(500));
    q.push(ev(3, 0, 0), Some(100));
    q.push(ev(4, 9, 0), None);
    q.push(ev(5, 1, 0), None);
    assert_eq!(pop_seq(&mut q), Some(4));
    let seen: Vec<(u64, EntryState)> = q
        .peek(10, None)
        .iter()
        .map(|v| (v.event.seq.0, v.state))
        .collect();
    assert_eq!(
        seen,
        vec![
            (4, EntryState::InFlight),
            (1, EntryState::Queued),
            (5, EntryState::Queued),
            (3, EntryState::Delayed),
            (2, EntryState::Delayed),
        ]
    );
    assert_eq!(q.peek(2, None).len(), 2);
    let delayed = q.peek(10, None).pop().unwrap();
    assert_eq!(delayed.due, Some(500));
}

#[test]
fn in_flight_at_a_member_and_drain() {
    let mut q = PendingQueue::new();
    for seq in 1..=4 {
        q.push(ev(seq, 0, 0), None);
    }
    q.pop(Seq(u64::MAX), None, ConnId(7), None);
    q.pop(Seq(u64::MAX), None, ConnId(8), None);
    q.pop(Seq(u64::MAX), None, ConnId(7), None);
    assert_eq!(q.in_flight_at(ConnId(7)), vec![Seq(1), Seq(3)]);
    let all: Vec<u64> = q.drain().iter().map(|e| e.seq.0).collect();
    assert_eq!(all, vec![1, 2, 3, 4]);
    assert!(q.is_empty());
    assert_eq!(q.bytes(), 0);
}

// ---- model-based property test --------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Push { priority: u8, delay: Option<u64> },
    Pop { age: bool, wait: Option<u64> },
    Ack(usize),
    Return { pick: usize, delay: Option<u64> },
    Touch { pick: usize, wait: u64 },
    Advance(u64),
    Evict,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, prop::option::weighted(0.3, 1u64..50))
            .prop_map(|(priority, delay)| Op::Push { priority, delay }),
        4 => (any::<bool>(), prop::option::weighted(0.5, 1u64..40))
            .prop_map(|(age, wait)| Op::Pop { age, wait }),
        2 => (0usize..64).prop_map(Op::Ack),
        2 => (0usize..64, prop::option::weighted(0.3, 1u64..30))
            .prop_map(|(pick, delay)| Op::Return { pick, delay }),
        1 => (0usize..64, 1u64..40).prop_map(|(pick, wait)| Op::Touch { pick, wait }),
        2 => (0u64..30).prop_map(Op::Advance),
        1 => Just(Op::Evict),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum MState {
    Queued {
        ready_seq: u64,
        ready_ms: u64,
    },
    Delayed {
        due: u64,
    },
    InFlight {
        ready_seq: u64,
        ready_ms: u64,
        deadline: Option<u64>,
    },
}

#[derive(Debug, Clone)]
struct MEntry {
    event: Arc<Event>,
    deliveries: u32,
    state: MState,
}

const AGE: u64 = 7;

fn model_pick(model: &[MEntry], age: bool) -> Option<usize> {
    let key = |e: &MEntry| -> Option<(i128, i16, u64)> {
        let MState::Queued {
            ready_seq,
            ready_ms,
        } = e.state
        else {
            return None;
        };
        let p = e.event.priority;
        let k = if age {
            i128::from(ready_ms) - i128::from(p) * i128::from(AGE)
        } else {
            -i128::from(p)
        };
        Some((k, -i16::from(p), ready_seq))
    };
    model
        .iter()
        .enumerate()
        .filter_map(|(i, e)| key(e).map(|k| (k, i)))
        .min()
        .map(|(_, i)| i)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Against a model (a list of entries with their states): no loss, no
    /// duplicate, delivery order by priority (or aging) then join order,
    /// returns at their place, due times and deadlines honoured exactly.
    #[test]
    fn behaves_like_the_model(ops in proptest::collection::vec(op(), 1..250)) {
        let mut q = PendingQueue::new();
        let mut model: Vec<MEntry> = Vec::new();
        let mut counter = 1u64;
        let mut now = 1_000u64;
        for op in ops {
            match op {
                Op::Push { priority, delay } => {
                    let e = ev(counter, priority, now);
                    counter += 1;
                    let due = delay.map(|d| now + d);
                    prop_assert!(q.push(e.clone(), due));
                    let state = match due {
                        Some(due) => MState::Delayed { due },
                        None => MState::Queued { ready_seq: e.seq.0, ready_ms: now },
                    };
                    model.push(MEntry { event: e, deliveries: 0, state });
                }
                Op::Pop { age, wait } => {
                    let age_ms = age.then_some(AGE);
                    let expected = model_pick(&model, age);
                    let got = q.pop(Seq(u64::MAX), age_ms, M, wait.map(|w| now + w));
                    match (expected, got) {
                        (None, Pop::Empty) => {}
                        (Some(i), Pop::Event { event, deliveries }) => {
                            let m = &mut model[i];
                            prop_assert_eq!(event.seq, m.event.seq);
                            m.deliveries += 1;
                            prop_assert_eq!(deliveries, m.deliveries);
                            let MState::Queued { ready_seq, ready_ms } = m.state else { unreachable!() };
                            m.state = MState::InFlight { ready_seq, ready_ms, deadline: wait.map(|w| now + w) };
                        }
                        (e, g) => prop_assert!(false, "expected {:?}, got {:?}", e, g),
                    }
                }
                Op::Ack(i) => {
                    if model.is_empty() { continue; }
                    let m = model.remove(i % model.len());
                    let state = q.remove(&m.event);
                    let expected = match m.state {
                        MState::Queued { .. } => EntryState::Queued,
                        MState::Delayed { .. } => EntryState::Delayed,
                        MState::InFlight { .. } => EntryState::InFlight,
                    };
                    prop_assert_eq!(state, Some(expected));
                    prop_assert!(q.remove(&m.event).is_none());
                }
                Op::Return { pick, delay } => {
                    let flying: Vec<usize> = (0..model.len())
                        .filter(|&i| matches!(model[i].state, MState::InFlight { .. }))
                        .collect();
                    if flying.is_empty() { continue; }
                    let i = flying[pick % flying.len()];
                    let MState::InFlight { ready_seq, ready_ms, .. } = model[i].state else { unreachable!() };
                    prop_assert!(q.requeue(model[i].event.seq, delay.map(|d| now + d)));
                    model[i].state = match delay {
                        Some(d) => MState::Delayed { due: now + d },
                        None => MState::Queued { ready_seq, ready_ms },
                    };
                }
                Op::Touch { pick, wait } => {
                    let flying: Vec<usize> = (0..model.len())
                        .filter(|&i| matches!(model[i].state, MState::InFlight { .. }))
                        .collect();
                    if flying.is_empty() { continue; }
                    let i = flying[pick % flying.len()];
                    prop_assert!(q.touch(model[i].event.seq, now + wait));
                    if let MState::InFlight { deadline, .. } = &mut model[i].state {
                        *deadline = Some(now + wait);
                    }
                }
                Op::Advance(dt) => {
                    now += dt;
                    // Deadlines first, in (deadline, seq) order.
                    let mut expired: Vec<(u64, u64, usize)> = model.iter().enumerate()
                        .filter_map(|(i, m)| match m.state {
                            MState::InFlight { deadline: Some(d), .. } if d <= now => Some((d, m.event.seq.0, i)),
                            _ => None,
                        })
                        .collect();
                    expired.sort_unstable();
                    for (_, seq, i) in expired {
                        prop_assert_eq!(q.expired_deadline(now), Some(Seq(seq)));
                        q.requeue(Seq(seq), None);
                        let MState::InFlight { ready_seq, ready_ms, .. } = model[i].state else { unreachable!() };
                        model[i].state = MState::Queued { ready_seq, ready_ms };
                    }
                    prop_assert_eq!(q.expired_deadline(now), None);
                    // Then due times, in (due, seq) order.
                    let mut due: Vec<(u64, u64, usize)> = model.iter().enumerate()
                        .filter_map(|(i, m)| match m.state {
                            MState::Delayed { due } if due <= now => Some((due, m.event.seq.0, i)),
                            _ => None,
                        })
                        .collect();
                    due.sort_unstable();
                    for (d, seq, i) in due {
                        let joined = q.join_due(now, &mut counter);
                        prop_assert_eq!(joined.map(|e| e.seq.0), Some(seq));
                        model[i].state = MState::Queued { ready_seq: counter - 1, ready_ms: d };
                    }
                    prop_assert!(q.join_due(now, &mut counter).is_none());
                }
                Op::Evict => {
                    let lowest = model.iter().enumerate()
                        .filter_map(|(i, m)| match m.state {
                            MState::Queued { ready_seq, .. } => Some(((m.event.priority, ready_seq), i)),
                            _ => None,
                        })
                        .min()
                        .or_else(|| model.iter().enumerate()
                            .filter_map(|(i, m)| match m.state {
                                MState::Delayed { .. } => Some(((m.event.priority, m.event.seq.0), i)),
                                _ => None,
                            })
                            .min())
                        .map(|(_, i)| i);
                    let got = q.evict_lowest().map(|e| e.seq);
                    prop_assert_eq!(got, lowest.map(|i| model[i].event.seq));
                    if let Some(i) = lowest { model.remove(i); }
                }
            }
            let count = |f: fn(&MState) -> bool| model.iter().filter(|m| f(&m.state)).count();
            prop_assert_eq!(q.queued(), count(|s| matches!(s, MState::Queued { .. })));
            prop_assert_eq!(q.delayed(), count(|s| matches!(s, MState::Delayed { .. })));
            prop_assert_eq!(q.in_flight(), count(|s| matches!(s, MState::InFlight { .. })));
            prop_assert_eq!(q.bytes(), model.iter().map(|m| m.event.msg_len()).sum::<u64>());
            let next_due = model.iter().filter_map(|m| match m.state { MState::Delayed { due } => Some(due), _ => None }).min();
            prop_assert_eq!(q.next_due(), next_due);
            let next_deadline = model.iter().filter_map(|m| match m.state { MState::InFlight { deadline, .. } => deadline, _ => None }).min();
            prop_assert_eq!(q.next_deadline(), next_deadline);
        }
        // Peek agrees with the order pop would take.
        let peeked: Vec<u64> = q.peek(1000, Some(AGE)).iter()
            .filter(|v| v.state == EntryState::Queued)
            .map(|v| v.event.seq.0)
            .collect();
        let popped = drain_order(&mut q, Some(AGE));
        prop_assert_eq!(peeked, popped);
    }
}
