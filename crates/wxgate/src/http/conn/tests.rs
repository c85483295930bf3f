use super::*;

fn registry() -> Registry {
    Registry {
        epoch: Instant::now(),
        conns: Mutex::new(BTreeMap::new()),
    }
}

#[test]
fn at_the_cap_the_oldest_connection_without_a_request_is_closed() {
    let registry = registry();
    let (first, _) = registry.admit(1, 2).unwrap();
    let (second, _) = registry.admit(2, 2).unwrap();
    first.enter(ACTIVE, 0);
    let (_, evicted) = registry.admit(3, 2).unwrap();
    assert!(evicted);
    assert_eq!(registry.len(), 2);
    let conns = registry.conns.lock().unwrap();
    assert!(conns.contains_key(&1), "the busy connection stays");
    assert!(!conns.contains_key(&2), "the idle one is closed");
    drop(conns);
    drop(second);
}

#[test]
fn at_the_cap_the_connection_waiting_longest_goes_first_whatever_it_waits_for() {
    let registry = registry();
    let (handled, _) = registry.admit(1, 3).unwrap();
    let (receiving, _) = registry.admit(2, 3).unwrap();
    let (fresh, _) = registry.admit(3, 3).unwrap();
    handled.enter(ACTIVE, 0);
    // The body has been arriving since before the newest connection was accepted.
    receiving.enter(BODY, 0);
    fresh.enter(HEADER, 10);
    let (_, evicted) = registry.admit(4, 3).unwrap();
    assert!(evicted);
    let conns = registry.conns.lock().unwrap();
    assert!(!conns.contains_key(&2), "the slow body goes");
    assert!(conns.contains_key(&1) && conns.contains_key(&3));
    drop(conns);
    drop((handled, receiving, fresh));
}

#[test]
fn at_the_cap_with_every_connection_busy_the_new_one_is_refused() {
    let registry = registry();
    let (first, _) = registry.admit(1, 1).unwrap();
    first.enter(ACTIVE, 0);
    assert!(registry.admit(2, 1).is_none());
    assert_eq!(registry.len(), 1);
}

#[test]
fn the_sweep_closes_slow_headers_and_idle_connections_but_not_busy_ones() {
    let registry = registry();
    let limits = Limits {
        header_timeout: Duration::from_millis(0),
        idle_timeout: Duration::from_millis(0),
        ..Limits::default()
    };
    let (slow, _) = registry.admit(1, 10).unwrap();
    let (idle, _) = registry.admit(2, 10).unwrap();
    let (busy, _) = registry.admit(3, 10).unwrap();
    idle.enter(IDLE, 0);
    busy.enter(ACTIVE, 0);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(registry.sweep(&limits), 2);
    assert_eq!(registry.len(), 1);
    drop((slow, idle, busy));
}
