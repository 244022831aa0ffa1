use super::*;

#[test]
fn backoff_doubles_to_an_hour_and_attempts_span_about_a_day() {
    assert_eq!(backoff(0), Duration::from_secs(1));
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(10), Duration::from_secs(1024));
    assert_eq!(backoff(12), Duration::from_secs(3600));
    assert_eq!(backoff(u32::MAX), Duration::from_secs(3600));
    let total: Duration = (0..MAX_ATTEMPTS).map(backoff).sum();
    assert!(
        total > Duration::from_secs(12 * 3600) && total < Duration::from_secs(36 * 3600),
        "{total:?}"
    );
}
