//! Policies on fixed snapshot times, against expectations worked out by hand.

use super::*;

/// A snapshot at an RFC 3339 time (its offset is the recorded local offset).
fn at(n: u8, time: &str) -> (SnapshotId, Snapshot) {
    snapshot(n, time, "host", &[])
}

fn snapshot(n: u8, time: &str, host: &str, tags: &[&str]) -> (SnapshotId, Snapshot) {
    let t = DateTime::parse_from_rfc3339(time).unwrap();
    let snapshot = Snapshot {
        time_ns: t.timestamp_nanos_opt().unwrap(),
        utc_offset_s: t.offset().local_minus_utc(),
        hostname: host.into(),
        paths: vec!["/data".into()],
        tags: tags.iter().map(|t| (*t).to_string()).collect(),
        ..Snapshot::default()
    };
    (SnapshotId([n; 32]), snapshot)
}

/// The ids kept, newest first.
fn kept(policy: &Policy, group: &[(SnapshotId, Snapshot)]) -> Vec<u8> {
    apply(policy, group).iter().filter(|d| d.keep()).map(|d| d.id.0[0]).collect()
}

#[test]
fn keep_last_keeps_the_newest_whatever_the_input_order() {
    let group = [
        at(3, "2024-05-03T10:00:00Z"),
        at(1, "2024-05-01T10:00:00Z"),
        at(5, "2024-05-05T10:00:00Z"),
        at(4, "2024-05-04T10:00:00Z"),
        at(2, "2024-05-02T10:00:00Z"),
    ];
    let policy = Policy { last: 2, ..Policy::default() };
    assert_eq!(kept(&policy, &group), [5, 4]);
    let decisions = apply(&policy, &group);
    assert_eq!(decisions[0].reasons, [Reason::Last]);
    assert!(!decisions[2].keep());
}

#[test]
fn daily_keeps_the_newest_of_each_day() {
    let group = [
        at(1, "2024-05-01T08:00:00Z"),
        at(2, "2024-05-01T20:00:00Z"),
        at(3, "2024-05-02T09:00:00Z"),
        at(4, "2024-05-03T07:00:00Z"),
        at(5, "2024-05-03T23:00:00Z"),
    ];
    let policy = Policy { daily: 2, ..Policy::default() };
    assert_eq!(kept(&policy, &group), [5, 3]);
    let every_day = Policy { daily: -1, ..Policy::default() };
    assert_eq!(kept(&every_day, &group), [5, 3, 2]);
}

#[test]
fn monthly_across_month_ends_and_a_leap_day() {
    let group = [
        at(1, "2024-01-31T23:00:00Z"),
        at(2, "2024-02-29T12:00:00Z"),
        at(3, "2024-03-01T00:30:00Z"),
        at(4, "2024-03-31T22:00:00Z"),
    ];
    let policy = Policy { monthly: 3, ..Policy::default() };
    assert_eq!(kept(&policy, &group), [4, 2, 1]);
}

#[test]
fn weekly_uses_iso_weeks_including_week_53() {
    // 2020 has an ISO week 53: Monday 28 December 2020 to Sunday 3 January 2021.
    let group = [
        at(1, "2020-12-27T12:00:00Z"), // 2020-W52 (Sunday)
        at(2, "2020-12-31T12:00:00Z"), // 2020-W53
        at(3, "2021-01-03T12:00:00Z"), // 2020-W53 (Sunday)
        at(4, "2021-01-04T12:00:00Z"), // 2021-W01 (Monday)
    ];
    let policy = Policy { weekly: 3, ..Policy::default() };
    assert_eq!(kept(&policy, &group), [4, 3, 1]);
    let yearly = Policy { yearly: 5, ..Policy::default() };
    assert_eq!(kept(&yearly, &group), [4, 2], "calendar years, not ISO years");
}

#[test]
fn buckets_follow_the_local_time_each_snapshot_recorded_across_dst() {
    // Central Europe, 31 March 2024: 02:00 CET becomes 03:00 CEST. Both are 31 March locally.
    let spring = [
        at(1, "2024-03-30T23:30:00+01:00"),
        at(2, "2024-03-31T01:30:00+01:00"),
        at(3, "2024-03-31T03:30:00+02:00"),
    ];
    let daily = Policy { daily: 5, ..Policy::default() };
    assert_eq!(kept(&daily, &spring), [3, 1]);
    // 27 October 2024: 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice. One local
    // hour, one hourly bucket: the later (in real time) is kept.
    let autumn = [
        at(1, "2024-10-27T02:30:00+02:00"),
        at(2, "2024-10-27T02:30:00+01:00"),
        at(3, "2024-10-27T03:10:00+01:00"),
    ];
    let hourly = Policy { hourly: 5, ..Policy::default() };
    assert_eq!(kept(&hourly, &autumn), [3, 2]);
    // A day boundary in local time, not UTC: 00:30 local on 1 June is still 31 May in UTC.
    let midnight = [at(1, "2024-05-31T22:00:00+02:00"), at(2, "2024-06-01T00:30:00+02:00")];
    assert_eq!(kept(&daily, &midnight), [2, 1]);
}

#[test]
fn keep_within_counts_back_from_the_newest_snapshot_in_calendar_terms() {
    let group = [
        at(1, "2024-05-08T11:59:00Z"),
        at(2, "2024-05-08T12:00:00Z"),
        at(3, "2024-05-10T12:00:00Z"),
    ];
    let policy = Policy { within: Some("2d".parse().unwrap()), ..Policy::default() };
    assert_eq!(kept(&policy, &group), [3, 2]);
    // One month before 31 March is 29 February in a leap year.
    let leap = [
        at(1, "2024-02-28T12:00:00Z"),
        at(2, "2024-02-29T12:00:00Z"),
        at(3, "2024-03-31T12:00:00Z"),
    ];
    let month = Policy { within: Some("1m".parse().unwrap()), ..Policy::default() };
    assert_eq!(kept(&month, &leap), [3, 2]);
}

#[test]
fn tags_and_protection_keep_snapshots_no_rule_would() {
    let mut protected = snapshot(1, "2020-01-01T00:00:00Z", "host", &[]);
    protected.1.protected = true;
    let group = [
        protected,
        snapshot(2, "2021-01-01T00:00:00Z", "host", &["audit"]),
        snapshot(3, "2022-01-01T00:00:00Z", "host", &[]),
        snapshot(4, "2024-01-01T00:00:00Z", "host", &[]),
    ];
    let policy = Policy { last: 1, tags: vec!["audit".into()], ..Policy::default() };
    assert_eq!(kept(&policy, &group), [4, 2, 1]);
    let reasons: Vec<Vec<Reason>> = apply(&policy, &group).into_iter().map(|d| d.reasons).collect();
    assert_eq!(reasons[2], [Reason::Tag]);
    assert_eq!(reasons[3], [Reason::Protected]);
}

#[test]
fn groups_are_decided_independently() {
    let all = vec![
        snapshot(1, "2024-05-01T10:00:00Z", "a", &[]),
        snapshot(2, "2024-05-02T10:00:00Z", "a", &[]),
        snapshot(3, "2024-05-01T10:00:00Z", "b", &[]),
    ];
    let by: GroupBy = "host,paths".parse().unwrap();
    let groups = groups(by, all);
    assert_eq!(
        groups.keys().map(ToString::to_string).collect::<Vec<_>>(),
        ["host a, paths /data", "host b, paths /data"]
    );
    let policy = Policy { last: 1, ..Policy::default() };
    let kept: Vec<Vec<u8>> = groups.values().map(|g| kept(&policy, g)).collect();
    assert_eq!(kept, [vec![2], vec![3]]);
    assert!("host,color".parse::<GroupBy>().is_err());
}

#[test]
fn an_empty_policy_is_refused_and_spans_parse() {
    assert!(check_policy(&Policy::default()).is_err());
    assert_eq!("1y6m2d12h".parse(), Ok(CalendarSpan { years: 1, months: 6, days: 2, hours: 12 }));
    for bad in ["", "5", "3w", "d", "1.5d"] {
        assert!(bad.parse::<CalendarSpan>().is_err(), "{bad}");
    }
}
