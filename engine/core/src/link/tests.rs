//! The link codec's tests: every message round-trips, partial and corrupt frames, bounds.

use bytes::{BufMut, Bytes, BytesMut};

use super::kind::{hook_kind_code, hook_kind_from_code, Kind};
use super::*;
use crate::app::WebhookEventType;

fn event(frame: &'static [u8]) -> ChannelEvent {
    ChannelEvent {
        app_id: "app-1".into(),
        channel: "presence-room".into(),
        except_socket_id: "123.456".into(),
        frame: Bytes::from_static(frame),
        part: None,
    }
}

fn room() -> PresenceChannel {
    PresenceChannel {
        app_id: "app-1".into(),
        channel: "presence-room".into(),
    }
}

fn member(user_id: &str, info: &'static [u8]) -> Member {
    Member {
        user_id: user_id.into(),
        user_info: Bytes::from_static(info),
    }
}

fn all_messages() -> Vec<LinkMessage> {
    vec![
        LinkMessage::Hello {
            version: VERSION,
            shard: 3,
            shard_count: 8,
            cluster: true,
        },
        LinkMessage::Welcome {
            version: VERSION,
            node_id: 0xdead_beef_0102_0304,
        },
        LinkMessage::Subscribe {
            app_id: "a".into(),
            channel: "private-x".into(),
            seq: 7,
        },
        LinkMessage::Subscribed {
            app_id: "a".into(),
            channel: "private-x".into(),
            seq: u32::MAX,
        },
        LinkMessage::Unsubscribe {
            app_id: "a".into(),
            channel: "ch".into(),
        },
        LinkMessage::Publish(event(b"\x81\x05hello")),
        LinkMessage::Deliver(ChannelEvent {
            except_socket_id: String::new(),
            ..event(b"")
        }),
        LinkMessage::Publish(ChannelEvent {
            part: Some(DialectPart::SocketIo(SocketIoEvent {
                event: "message".into(),
                args_json: Bytes::from_static(br#"{"channel":"c","message":1}"#),
            })),
            ..event(b"\x81\x02{}")
        }),
        LinkMessage::Publish(ChannelEvent {
            part: Some(DialectPart::ChannelsJson("V1StGXR8_Z5jdHi6B-myT".into())),
            ..event(b"\x81\x02{}")
        }),
        LinkMessage::Deliver(ChannelEvent {
            part: Some(DialectPart::SlipText),
            ..event(b"\x81\x02{}")
        }),
        LinkMessage::MemberJoin(room(), member("u1", b"{\"name\":\"A\"}")),
        LinkMessage::MemberLeave(room(), "u1".into()),
        LinkMessage::MembersQuery(room(), 9),
        LinkMessage::MembersResync(room(), vec![member("u1", b"{}"), member("u2", b"")]),
        LinkMessage::ResyncDone,
        LinkMessage::MembersSnapshot(room(), 9, vec![member("u3", b"{\"x\":1}")]),
        LinkMessage::MembersSnapshot(room(), 10, Vec::new()),
        LinkMessage::MemberAdded(room(), member("u4", b"null")),
        LinkMessage::MemberRemoved(room(), "u4".into()),
        LinkMessage::Stats(BridgeStats {
            redis_connected: true,
            redis_reconnects: 1,
            publishes_relayed: 2,
            publishes_dropped: 3,
            messages_received: 4,
            deliveries_dropped: 5,
            publish_queue_depth: 6,
            links: 7,
            webhook_events_delivered: 8,
            webhook_requests_failed: 9,
            webhook_events_given_up: 10,
            webhook_events_dropped: 11,
            webhook_events_pending: 12,
            auth_granted: 13,
            auth_refused: 14,
            auth_failed: 15,
            auth_shed: 16,
            function_pipelines_done: 17,
            function_pipelines_failed: 18,
            function_pipelines_shed: 19,
            slip_calls_answered: 20,
            slip_calls_failed: 21,
            slip_calls_shed: 22,
        }),
        LinkMessage::SlipCall(SlipCall {
            call_id: 7,
            app_id: "a".into(),
            connection_id: "1203.4".into(),
            url: "http://127.0.0.1:9/ws".into(),
            secret: "s3cret".into(),
            body: Bytes::from_static(b"{\"connectionId\":\"1203.4\"}"),
        }),
        LinkMessage::SlipAnswer {
            call_id: 7,
            outcome: SlipOutcome::Answered {
                status: 200,
                body: Bytes::from_static(b"{\"events\":[]}"),
            },
        },
        LinkMessage::SlipCommands {
            app_id: "a".into(),
            commands: Bytes::from_static(b"{\"events\":[]}"),
        },
        LinkMessage::SlipAnswer {
            call_id: 8,
            outcome: SlipOutcome::Failed("request timed out".into()),
        },
        LinkMessage::FunctionRequest(FunctionRequest {
            request_id: 5,
            app_id: "a".into(),
            channel: "news".into(),
            message: Bytes::from_static(b"{\"text\":\"hi\"}"),
            functions: vec![
                ("upper".into(), "http://127.0.0.1:9/upper".into()),
                ("reverse".into(), "https://f.example/r".into()),
            ],
        }),
        LinkMessage::FunctionResult {
            request_id: 5,
            outcome: FunctionOutcome::Done(Bytes::from_static(b"\"HI\"")),
        },
        LinkMessage::FunctionResult {
            request_id: 6,
            outcome: FunctionOutcome::Failed("upper: timed out".into()),
        },
        LinkMessage::Associations(Bytes::from_static(b"{\"applications\":{}}")),
        LinkMessage::WebhookConfig(Bytes::from_static(b"{\"apps\":[]}")),
        LinkMessage::Hook(HookEvent {
            app_id: "a".into(),
            channel: "private-x".into(),
            kind: WebhookEventType::ClientEvent,
            body: Bytes::from_static(b"{\"name\":\"client_event\"}"),
        }),
        LinkMessage::Hook(HookEvent {
            app_id: "a".into(),
            channel: "cache-x".into(),
            kind: WebhookEventType::CacheMiss,
            body: Bytes::new(),
        }),
        LinkMessage::AuthRequest(AuthRequest {
            request_id: 77,
            app_id: "a".into(),
            url: "http://127.0.0.1:9/auth?x=1".into(),
            socket_id: "1.2".into(),
            channel: "private-x".into(),
            headers: vec![("Cookie".into(), "s=1; t=2".into())],
            form: "device=abc".into(),
        }),
        LinkMessage::AuthResponse {
            request_id: 77,
            outcome: AuthOutcome::Granted {
                auth: "key:sig".into(),
                channel_data: "{\"user_id\":\"u\"}".into(),
            },
        },
        LinkMessage::AuthResponse {
            request_id: 78,
            outcome: AuthOutcome::Refused {
                status: 403,
                reason: "Forbidden".into(),
            },
        },
        LinkMessage::CacheQuery {
            app_id: "a".into(),
            channel: "cache-x".into(),
            query_id: 5,
        },
        LinkMessage::CacheAnswer {
            query_id: 5,
            frame: Bytes::from_static(b"\x81\x01x"),
        },
        LinkMessage::CacheAnswer {
            query_id: 6,
            frame: Bytes::new(),
        },
        LinkMessage::UserCommand {
            app_id: "a".into(),
            user_id: "u".into(),
            action: UserAction::Deliver(Bytes::from_static(b"\x81\x01y")),
        },
        LinkMessage::UserCommand {
            app_id: "a".into(),
            user_id: "u".into(),
            action: UserAction::Terminate,
        },
        LinkMessage::ConnectionCounts(vec![("a".into(), 7), ("b".into(), 0)]),
        LinkMessage::ConnectionCounts(Vec::new()),
        LinkMessage::ChannelsQuery {
            query_id: 3,
            app_id: "a".into(),
            filter: ChannelFilter::Prefix("presence-".into()),
        },
        LinkMessage::ChannelsQuery {
            query_id: 4,
            app_id: "a".into(),
            filter: ChannelFilter::Names(vec!["x".into(), "presence-y".into()]),
        },
        LinkMessage::ChannelsAnswer {
            query_id: 4,
            channels: vec![
                ChannelCount {
                    name: "x".into(),
                    subscriptions: 12,
                    users: None,
                },
                ChannelCount {
                    name: "presence-y".into(),
                    subscriptions: 3,
                    users: Some(2),
                },
            ],
        },
    ]
}

#[test]
fn every_message_round_trips_alone_and_back_to_back() {
    let mut buf = BytesMut::new();
    for message in all_messages() {
        encode(&message, &mut buf).expect("encodes");
    }
    for expected in all_messages() {
        assert_eq!(decode(&mut buf), Ok(Some(expected)));
    }
    assert_eq!(decode(&mut buf), Ok(None));
    assert!(buf.is_empty());
}

#[test]
fn every_webhook_kind_has_its_own_code() {
    for kind in WebhookEventType::ALL {
        assert_eq!(hook_kind_from_code(hook_kind_code(kind)), Ok(kind));
    }
    assert_eq!(hook_kind_from_code(0), Err(LinkError::UnknownKind(0)));
    assert_eq!(hook_kind_from_code(8), Err(LinkError::UnknownKind(8)));
}

#[test]
fn partial_frames_need_more_bytes_and_consume_nothing() {
    let mut whole = BytesMut::new();
    encode(&LinkMessage::Publish(event(b"\x81\x02hi")), &mut whole).expect("encodes");
    for cut in 0..whole.len() {
        let mut part = BytesMut::from(&whole[..cut]);
        assert_eq!(decode(&mut part), Ok(None), "cut at {cut}");
        assert_eq!(part.len(), cut);
    }
}

#[test]
fn oversized_names_are_refused_on_both_sides() {
    let long = "x".repeat(NAME_BYTES_MAX + 1);
    let mut buf = BytesMut::from(&b"keep"[..]);
    let message = LinkMessage::Unsubscribe {
        app_id: "a".into(),
        channel: long.clone(),
    };
    assert_eq!(
        encode(&message, &mut buf),
        Err(LinkError::NameTooLong(long.len()))
    );
    assert_eq!(
        &buf[..],
        b"keep",
        "a failed encode leaves the buffer as it was"
    );

    // Hand-built frame announcing a 300-byte name.
    let mut bad = BytesMut::new();
    bad.put_u32_le(1 + 2 + 300);
    bad.put_u8(Kind::Unsubscribe.code());
    bad.put_u16_le(300);
    bad.extend_from_slice(&[b'y'; 300]);
    assert_eq!(decode(&mut bad), Err(LinkError::NameTooLong(300)));
}

#[test]
fn corrupt_frames_are_errors_not_panics() {
    let cases: Vec<(Vec<u8>, LinkError)> = vec![
        (vec![0, 0, 0, 0], LinkError::FrameLength(0)),
        (
            (FRAME_BYTES_MAX as u32).to_le_bytes().to_vec(),
            LinkError::FrameLength(FRAME_BYTES_MAX),
        ),
        (vec![1, 0, 0, 0, 77], LinkError::UnknownKind(77)),
        (
            vec![2, 0, 0, 0, Kind::Hello.code(), 1],
            LinkError::Truncated,
        ),
        (
            vec![4, 0, 0, 0, Kind::Unsubscribe.code(), 1, 0, b'a'],
            LinkError::Truncated,
        ),
        (
            vec![6, 0, 0, 0, Kind::Unsubscribe.code(), 1, 0, 0xff, 0, 0],
            LinkError::NotUtf8,
        ),
        (
            vec![9, 0, 0, 0, Kind::Hello.code(), 1, 0, 0, 0, 1, 0, 1, 9],
            LinkError::TrailingBytes,
        ),
    ];
    for (bytes, expected) in cases {
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decode(&mut buf), Err(expected), "input {bytes:?}");
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: every prefix of a valid stream with each byte flipped.
    let mut valid = BytesMut::new();
    for message in all_messages() {
        encode(&message, &mut valid).expect("encodes");
    }
    for index in 0..valid.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = valid.clone();
            bytes[index] ^= flip;
            let mut buf = bytes;
            for _ in 0..32 {
                match decode(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

#[test]
fn delivered_frames_share_the_read_buffer() {
    let mut buf = BytesMut::new();
    encode(&LinkMessage::Deliver(event(b"\x81\x03abc")), &mut buf).expect("encodes");
    let Ok(Some(LinkMessage::Deliver(got))) = decode(&mut buf) else {
        panic!("expected a Deliver");
    };
    assert_eq!(&got.frame[..], b"\x81\x03abc");
}
