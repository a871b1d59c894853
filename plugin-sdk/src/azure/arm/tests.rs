use super::*;

fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response {
    http::Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

const URL: &str =
    "https://arm.test/subscriptions/s/resourceGroups/g/providers/P/things/a?api-version=2024-01-01";
const AAO: &str = "https://arm.test/providers/P/locations/l/operationStatuses/op1?api-version=x";
const LOC: &str = "https://arm.test/providers/P/locations/l/operationResults/op1?api-version=x";

fn pending(r: Result<Lro>) -> (Poller, Duration) {
    match r {
        Ok(Lro::Pending(p, w)) => (p, w),
        other => panic!("expected a pending operation, got {other:?}"),
    }
}

#[test]
fn states_are_case_insensitive() {
    assert_eq!(state("Succeeded"), State::Succeeded);
    assert_eq!(state("SUCCEEDED"), State::Succeeded);
    assert_eq!(state("failed"), State::Failed);
    assert_eq!(state("Canceled"), State::Canceled);
    assert_eq!(state("cancelled"), State::Canceled);
    for s in [
        "InProgress",
        "Accepted",
        "Creating",
        "Deleting",
        "Updating",
        "",
    ] {
        assert_eq!(state(s), State::Running, "{s}");
    }
}

#[test]
fn retry_after_forms_and_interval_bounds() {
    let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
    assert_eq!(
        retry_after(&h("Retry-After", "7")),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        retry_after(&h("retry-after", " 3 ")),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        retry_after(&h("x-ms-retry-after-ms", "250")),
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        retry_after(&h("Retry-After-Ms", "1500")),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        retry_after(&h("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")),
        None
    );
    assert_eq!(retry_after(&[]), None);
    let o = Options::default();
    assert_eq!(poll_interval(&[], &o), Duration::from_secs(10));
    assert_eq!(
        poll_interval(&h("Retry-After", "0"), &o),
        Duration::from_secs(1),
        "floor"
    );
    assert_eq!(
        poll_interval(&h("Retry-After", "45"), &o),
        Duration::from_secs(45)
    );
    let fast = Options::default().with_interval(Duration::ZERO);
    assert_eq!(poll_interval(&[], &fast), Duration::ZERO);
    assert_eq!(
        poll_interval(&h("Retry-After", "2"), &fast),
        Duration::from_secs(2)
    );
}

#[test]
fn body_fields() {
    assert_eq!(
        provisioning_state(br#"{"properties":{"provisioningState":"Accepted"}}"#).as_deref(),
        Some("Accepted")
    );
    assert_eq!(provisioning_state(b"{}"), None);
    assert_eq!(provisioning_state(b"not json"), None);
    assert_eq!(
        operation_status(br#"{"status":"InProgress"}"#).as_deref(),
        Some("InProgress")
    );
    assert_eq!(
        arm_error(br#"{"status":"Failed","error":{"code":"Quota","message":"no cores"}}"#),
        Some(("Quota".into(), "no cores".into()))
    );
    assert_eq!(
        arm_error(br#"{"properties":{"status":{"errorCode":"E1","errorMessage":"disk busy"}}}"#),
        Some(("E1".into(), "disk busy".into()))
    );
    assert_eq!(arm_error(b"{}"), None);
}

#[test]
fn the_monitor_is_chosen_in_azure_order() {
    let o = Options::default();
    let all = [
        ("Azure-AsyncOperation", AAO),
        ("Operation-Location", "https://arm.test/op"),
        ("Location", LOC),
    ];
    let (p, _) = pending(begin("PUT", URL, resp(201, &all, ""), &o));
    assert_eq!(p.monitor(), &Monitor::AzureAsyncOperation(AAO.into()));
    let (p, _) = pending(begin("PUT", URL, resp(201, &all[1..], ""), &o));
    assert_eq!(
        p.monitor(),
        &Monitor::OperationLocation("https://arm.test/op".into())
    );
    let (p, _) = pending(begin("DELETE", URL, resp(202, &all[2..], ""), &o));
    assert_eq!(p.monitor(), &Monitor::Location(LOC.into()));
    let accepted = r#"{"properties":{"provisioningState":"Accepted"}}"#;
    let (p, w) = pending(begin(
        "put",
        URL,
        resp(201, &[("Retry-After", "4")], accepted),
        &o,
    ));
    assert_eq!(p.monitor(), &Monitor::Resource(URL.into()));
    assert_eq!(w, Duration::from_secs(4));
    // 200 with a non-terminal state is still running
    let (p, _) = pending(begin("PATCH", URL, resp(200, &[], accepted), &o));
    assert_eq!(p.monitor(), &Monitor::Resource(URL.into()));
}

#[test]
fn finished_at_once_or_failed_at_once() {
    let o = Options::default();
    let done = |r: Result<Lro>| matches!(r, Ok(Lro::Done(_)));
    assert!(done(begin(
        "PUT",
        URL,
        resp(
            200,
            &[],
            r#"{"properties":{"provisioningState":"Succeeded"}}"#
        ),
        &o
    )));
    assert!(done(begin(
        "PUT",
        URL,
        resp(200, &[], r#"{"name":"a"}"#),
        &o
    )));
    assert!(done(begin("DELETE", URL, resp(204, &[], ""), &o)));
    assert!(done(begin("DELETE", URL, resp(200, &[], ""), &o)));
    assert!(done(begin("POST", URL, resp(200, &[], r#"{"x":1}"#), &o)));
    // terminal in the first answer: no polling, even with a monitor header
    assert!(done(begin(
        "PUT",
        URL,
        resp(
            201,
            &[("Azure-AsyncOperation", AAO)],
            r#"{"properties":{"provisioningState":"succeeded"}}"#
        ),
        &o
    )));
    let e = begin(
        "PUT",
        URL,
        resp(200, &[], r#"{"properties":{"provisioningState":"Failed","status":{"errorCode":"E","errorMessage":"bad disk"}}}"#),
        &o,
    )
    .unwrap_err();
    assert!(
        e.message.contains("ended Failed") && e.message.contains("E: bad disk"),
        "{}",
        e.message
    );
}

#[test]
fn errors_of_the_first_answer() {
    let o = Options::default();
    let e = begin("DELETE", URL, resp(202, &[], ""), &o).unwrap_err();
    assert!(
        e.message.contains("without Azure-AsyncOperation"),
        "{}",
        e.message
    );
    let e = begin("POST", URL, resp(202, &[], ""), &o).unwrap_err();
    assert!(e.message.contains("(202)"), "{}", e.message);
    let e = begin(
        "PUT",
        URL,
        resp(
            409,
            &[],
            r#"{"error":{"code":"Conflict","message":"busy"}}"#,
        ),
        &o,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("409") && e.message.contains("Conflict: busy"),
        "{}",
        e.message
    );
    assert!(
        !e.message.contains("api-version"),
        "query left out: {}",
        e.message
    );
    assert_eq!(
        begin("GET", URL, resp(403, &[], ""), &o).unwrap_err().code,
        ErrorCode::Denied
    );
    assert!(begin("PUT", URL, resp(203, &[], ""), &o).is_err());
    assert!(
        begin(
            "PUT",
            URL,
            resp(201, &[("Azure-AsyncOperation", "/relative")], ""),
            &o
        )
        .is_err()
    );
}

#[test]
fn polls_until_terminal_then_fetches_per_method() {
    let o = Options::default();
    // PUT via Azure-AsyncOperation: the result is a GET of the original URL
    let (mut p, _) = pending(begin(
        "PUT",
        URL,
        resp(201, &[("Azure-AsyncOperation", AAO)], ""),
        &o,
    ));
    let running = p
        .on_poll(
            resp(200, &[("Retry-After", "3")], r#"{"status":"InProgress"}"#),
            &o,
        )
        .unwrap();
    assert!(matches!(running, Progress::Running(w) if w == Duration::from_secs(3)));
    // a throttled poll just polls again
    assert!(matches!(
        p.on_poll(resp(429, &[], ""), &o).unwrap(),
        Progress::Running(_)
    ));
    match p
        .on_poll(resp(200, &[], r#"{"status":"succeeded"}"#), &o)
        .unwrap()
    {
        Progress::Fetch(u) => assert_eq!(u, URL),
        other => panic!("{other:?}"),
    }
    // POST with Location: the result is a GET of the Location
    let (mut p, _) = pending(begin(
        "POST",
        URL,
        resp(202, &[("Azure-AsyncOperation", AAO), ("Location", LOC)], ""),
        &o,
    ));
    match p
        .on_poll(resp(200, &[], r#"{"status":"Succeeded"}"#), &o)
        .unwrap()
    {
        Progress::Fetch(u) => assert_eq!(u, LOC),
        other => panic!("{other:?}"),
    }
    // POST without Location: the monitor's answer is the result
    let (mut p, _) = pending(begin(
        "POST",
        URL,
        resp(202, &[("Azure-AsyncOperation", AAO)], ""),
        &o,
    ));
    assert!(matches!(
        p.on_poll(resp(200, &[], r#"{"status":"Succeeded"}"#), &o)
            .unwrap(),
        Progress::Done(_)
    ));
    // POST via Operation-Location: resourceLocation names the result
    let (mut p, _) = pending(begin(
        "POST",
        URL,
        resp(202, &[("Operation-Location", AAO)], ""),
        &o,
    ));
    match p
        .on_poll(
            resp(
                200,
                &[],
                r#"{"status":"Succeeded","resourceLocation":"https://arm.test/r"}"#,
            ),
            &o,
        )
        .unwrap()
    {
        Progress::Fetch(u) => assert_eq!(u, "https://arm.test/r"),
        other => panic!("{other:?}"),
    }
    // DELETE via Location: 202 running, 204 done, no final GET
    let (mut p, _) = pending(begin(
        "DELETE",
        URL,
        resp(202, &[("Location", LOC)], ""),
        &o,
    ));
    assert!(matches!(
        p.on_poll(resp(202, &[], ""), &o).unwrap(),
        Progress::Running(_)
    ));
    assert!(matches!(
        p.on_poll(resp(204, &[], ""), &o).unwrap(),
        Progress::Done(_)
    ));
    // PUT via the resource: its own answer is the result
    let (mut p, _) = pending(begin("PUT", URL, resp(201, &[], ""), &o));
    assert!(matches!(
        p.on_poll(
            resp(
                200,
                &[],
                r#"{"properties":{"provisioningState":"Creating"}}"#
            ),
            &o
        )
        .unwrap(),
        Progress::Running(_)
    ));
    assert!(matches!(
        p.on_poll(
            resp(
                200,
                &[],
                r#"{"properties":{"provisioningState":"Succeeded"}}"#
            ),
            &o
        )
        .unwrap(),
        Progress::Done(_)
    ));
    assert_eq!(
        p.on_poll(resp(404, &[], ""), &o).unwrap_err().code,
        ErrorCode::NotFound
    );
    // final-state-via overrides
    let o2 = Options {
        final_state_via: FinalStateVia::OriginalUri,
        ..Options::default()
    };
    let (mut p, _) = pending(begin(
        "POST",
        URL,
        resp(202, &[("Location", LOC), ("Azure-AsyncOperation", AAO)], ""),
        &o2,
    ));
    assert!(
        matches!(p.on_poll(resp(200, &[], r#"{"status":"Succeeded"}"#), &o2).unwrap(), Progress::Fetch(u) if u == URL)
    );
}

#[test]
fn failed_and_canceled_carry_arms_error() {
    let o = Options::default();
    let (mut p, _) = pending(begin(
        "PUT",
        URL,
        resp(201, &[("Azure-AsyncOperation", AAO)], ""),
        &o,
    ));
    let e = p
        .on_poll(
            resp(200, &[], r#"{"status":"Failed","error":{"code":"OutOfCapacity","message":"no room on the cluster"}}"#),
            &o,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Failed);
    assert!(
        e.message.contains("ended Failed")
            && e.message.contains("OutOfCapacity: no room on the cluster"),
        "{}",
        e.message
    );
    let e = p
        .on_poll(resp(200, &[], r#"{"status":"CANCELED"}"#), &o)
        .unwrap_err();
    assert!(e.message.contains("ended CANCELED"), "{}", e.message);
    let e = p
        .on_poll(resp(200, &[], r#"{"nostatus":1}"#), &o)
        .unwrap_err();
    assert!(e.message.contains("no `status`"), "{}", e.message);
    let e = p
        .on_poll(
            resp(
                404,
                &[],
                r#"{"error":{"code":"NotFound","message":"gone"}}"#,
            ),
            &o,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
}

/// A scripted ARM: answers in order, records requests and waits.
struct Script {
    answers: Vec<http::Response>,
    seen: Vec<(String, String)>,
    waits: Vec<Duration>,
}

fn run(
    answers: Vec<http::Response>,
    method: &str,
    opts: &Options,
) -> (Result<http::Response>, Script) {
    let mut s = Script {
        answers: answers.into_iter().rev().collect(),
        seen: Vec::new(),
        waits: Vec::new(),
    };
    let r = {
        let (seen, answers, waits) = (&mut s.seen, &mut s.answers, &mut s.waits);
        send_and_wait_with(
            |req: &http::Request| {
                seen.push((req.method.clone(), req.url.clone()));
                Ok(answers.pop().expect("an answer is scripted"))
            },
            |d| {
                waits.push(d);
                Ok(())
            },
            method,
            URL,
            Some(b"{}"),
            opts,
        )
    };
    (r, s)
}

#[test]
fn the_whole_exchange_of_a_put() {
    let o = Options::default();
    let (r, s) = run(
        vec![
            resp(
                201,
                &[("Azure-AsyncOperation", AAO), ("Retry-After", "2")],
                r#"{"properties":{"provisioningState":"Accepted"}}"#,
            ),
            resp(200, &[], r#"{"status":"InProgress"}"#),
            resp(200, &[("Retry-After", "5")], r#"{"status":"InProgress"}"#),
            resp(200, &[], r#"{"status":"Succeeded"}"#),
            resp(
                200,
                &[],
                r#"{"name":"a","properties":{"provisioningState":"Succeeded"}}"#,
            ),
        ],
        "PUT",
        &o,
    );
    let r = r.unwrap();
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains(r#""name":"a""#));
    let urls: Vec<(&str, &str)> = s
        .seen
        .iter()
        .map(|(m, u)| (m.as_str(), u.as_str()))
        .collect();
    assert_eq!(
        urls,
        [
            ("PUT", URL),
            ("GET", AAO),
            ("GET", AAO),
            ("GET", AAO),
            ("GET", URL)
        ]
    );
    assert_eq!(
        s.waits,
        [
            Duration::from_secs(2),
            Duration::from_secs(10),
            Duration::from_secs(5)
        ]
    );
}

#[test]
fn polling_is_bounded() {
    let running = || resp(200, &[], r#"{"status":"InProgress"}"#);
    let o = Options {
        max_polls: 3,
        ..Options::default()
    };
    let mut answers = vec![resp(202, &[("Azure-AsyncOperation", AAO)], "")];
    answers.extend((0..3).map(|_| running()));
    let (r, s) = run(answers, "POST", &o);
    let e = r.unwrap_err();
    assert!(e.message.contains("still running"), "{}", e.message);
    assert_eq!(s.seen.len(), 4, "three polls, no more");
    // the total wait bounds it too: a Retry-After past it is not waited for
    let o = Options {
        max_wait: Duration::from_secs(60),
        ..Options::default()
    };
    let (r, s) = run(
        vec![resp(202, &[("Location", LOC), ("Retry-After", "3600")], "")],
        "DELETE",
        &o,
    );
    assert!(r.unwrap_err().message.contains("still running"));
    assert!(s.waits.is_empty());
}

#[test]
fn a_synchronous_answer_needs_no_poll() {
    let (r, s) = run(
        vec![resp(
            200,
            &[],
            r#"{"properties":{"provisioningState":"Succeeded"}}"#,
        )],
        "PUT",
        &Options::default(),
    );
    assert_eq!(r.unwrap().status, 200);
    assert_eq!(s.seen.len(), 1);
    assert!(s.waits.is_empty());
}
