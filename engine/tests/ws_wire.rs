//! RFC 6455 wire rules, checked with hand-made frames on the echo endpoint (`--echo-path /echo`)
//! and on the Pusher endpoint: masking, RSV bits, opcodes, fragmentation, UTF-8, the message
//! size limit and the closing handshake.

#![allow(clippy::unwrap_used)]

mod common;

use common::{op, Server, WsClient};

const ECHO: &str = "/echo";

fn echo_server() -> Server {
    Server::start(&["--echo-path", ECHO, "--max-message-size", "1024"])
}

/// Both endpoints: the echo path and a Pusher connection (after `connection_established`).
fn both_endpoints(server: &Server) -> Vec<(&'static str, WsClient)> {
    vec![
        ("echo", WsClient::connect(server.addr, ECHO)),
        ("pusher", WsClient::pusher(server.addr)),
    ]
}

/// The server fails the connection with `code`: a close frame with that code, then it closes
/// the TCP connection.
fn expect_failed_with(client: &mut WsClient, code: u16) {
    client.expect_close(code);
    client.expect_eof();
}

#[test]
fn echo_path_echoes_text_binary_and_answers_ping() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_text("hello, wörld");
    let frame = client.next_frame();
    assert_eq!((frame.opcode, frame.fin), (op::TEXT, true));
    assert_eq!(frame.payload, "hello, wörld".as_bytes());
    client.send_frame(true, op::BINARY, &[0, 1, 2, 255]);
    let frame = client.next_frame();
    assert_eq!(
        (frame.opcode, frame.payload.as_slice()),
        (op::BINARY, &[0u8, 1, 2, 255][..])
    );
    client.send_frame(true, op::PING, b"are you there");
    let frame = client.next_frame();
    assert_eq!(
        (frame.opcode, frame.payload.as_slice()),
        (op::PONG, &b"are you there"[..])
    );
}

#[test]
fn unmasked_client_frame_is_closed_1002() {
    let server = echo_server();
    for (_, mut client) in both_endpoints(&server) {
        client.send_frame_with(true, 0, op::TEXT, b"not masked", false);
        expect_failed_with(&mut client, 1002);
    }
}

#[test]
fn rsv_bits_are_closed_1002() {
    let server = echo_server();
    for rsv in [0b100, 0b010, 0b001] {
        for (name, mut client) in both_endpoints(&server) {
            client.send_frame_with(true, rsv, op::TEXT, b"{}", true);
            let frame = client.next_frame_for(&format!("close 1002 after RSV {rsv:03b} on {name}"));
            assert_eq!(
                frame.close_code(),
                Some(1002),
                "{name} rsv {rsv:03b}: {}",
                frame.describe()
            );
            client.expect_eof();
        }
    }
}

#[test]
fn reserved_opcodes_are_closed_1002() {
    let server = echo_server();
    for opcode in [3u8, 7, 0xB, 0xF] {
        let mut client = WsClient::connect(server.addr, ECHO);
        client.send_frame(true, opcode, b"x");
        let frame = client.next_frame_for(&format!("close 1002 after opcode {opcode}"));
        assert_eq!(
            frame.close_code(),
            Some(1002),
            "opcode {opcode}: {}",
            frame.describe()
        );
        client.expect_eof();
    }
    let mut client = WsClient::pusher(server.addr);
    client.send_frame(true, 3, b"x");
    expect_failed_with(&mut client, 1002);
}

#[test]
fn fragmented_control_frame_is_closed_1002() {
    let server = echo_server();
    for opcode in [op::PING, op::PONG, op::CLOSE] {
        let mut client = WsClient::connect(server.addr, ECHO);
        client.send_frame(false, opcode, b"ab");
        let frame =
            client.next_frame_for(&format!("close 1002 after a fragmented opcode {opcode}"));
        assert_eq!(
            frame.close_code(),
            Some(1002),
            "opcode {opcode}: {}",
            frame.describe()
        );
        client.expect_eof();
    }
}

#[test]
fn control_frame_over_125_bytes_is_closed_1002() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_frame(true, op::PING, &[b'p'; 126]);
    expect_failed_with(&mut client, 1002);
}

#[test]
fn continuation_without_a_start_is_closed_1002() {
    let server = echo_server();
    for (_, mut client) in both_endpoints(&server) {
        client.send_frame(true, op::CONT, b"orphan");
        expect_failed_with(&mut client, 1002);
    }
}

#[test]
fn new_data_frame_inside_a_fragmented_message_is_closed_1002() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_frame(false, op::TEXT, b"first half");
    client.send_frame(true, op::TEXT, b"not a continuation");
    expect_failed_with(&mut client, 1002);
}

#[test]
fn invalid_utf8_text_is_closed_1007() {
    let server = echo_server();
    for bad in [
        &b"\xff"[..],
        b"ok \xc3\x28",
        b"\xed\xa0\x80 surrogate",
        b"\xc0\xaf overlong",
    ] {
        for (name, mut client) in both_endpoints(&server) {
            client.send_frame(true, op::TEXT, bad);
            let frame = client.next_frame_for(&format!("close 1007 for {bad:?} on {name}"));
            assert_eq!(
                frame.close_code(),
                Some(1007),
                "{name} {bad:?}: {}",
                frame.describe()
            );
            client.expect_eof();
        }
    }
}

#[test]
fn invalid_utf8_split_across_fragments_is_closed_1007() {
    let server = echo_server();
    // A valid prefix of "€" (E2 82) then a byte that cannot continue it.
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_frame(false, op::TEXT, b"price: \xe2\x82");
    client.send_frame(true, op::CONT, b"\x28 oops");
    expect_failed_with(&mut client, 1007);
    // A message whose last fragment ends in the middle of a character.
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_frame(false, op::TEXT, b"abc");
    client.send_frame(false, op::CONT, b"def\xe2");
    client.send_frame(true, op::CONT, b"\x82");
    expect_failed_with(&mut client, 1007);
    // The same on the Pusher endpoint.
    let mut client = WsClient::pusher(server.addr);
    client.send_frame(false, op::TEXT, b"{\"event\":\"\xf0\x9f");
    client.send_frame(true, op::CONT, b"\xff\"}");
    expect_failed_with(&mut client, 1007);
}

#[test]
fn valid_utf8_split_across_fragments_with_a_ping_interleaved_is_reassembled() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, ECHO);
    let message = "héllo wörld, 5 € 🎉";
    let bytes = message.as_bytes();
    // Split inside "ö" (C3 B6), inside "€" (E2 82 AC) and inside the emoji (F0 9F 8E 89).
    let o = message.find('ö').unwrap() + 1;
    let euro = message.find('€').unwrap() + 2;
    let party = message.find('🎉').unwrap() + 3;
    client.send_frame(false, op::TEXT, &bytes[..o]);
    client.send_frame(true, op::PING, b"in-between");
    client.send_frame(false, op::CONT, &bytes[o..euro]);
    client.send_frame(false, op::CONT, &bytes[euro..party]);
    client.send_frame(true, op::CONT, &bytes[party..]);
    let pong = client.next_frame_for("the pong answering the interleaved ping");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (op::PONG, &b"in-between"[..]),
        "first frame must be the pong: {}",
        pong.describe()
    );
    let echoed = client.next_frame_for("the reassembled message");
    assert_eq!(
        (echoed.opcode, echoed.fin),
        (op::TEXT, true),
        "{}",
        echoed.describe()
    );
    assert_eq!(echoed.text(), message);
    // Same with every frame in one write (the server sees them in one read).
    let mut batch = Vec::new();
    batch.extend(client.frame_bytes(false, op::TEXT, &bytes[..o]));
    batch.extend(client.frame_bytes(true, op::PING, b"batched"));
    batch.extend(client.frame_bytes(true, op::CONT, &bytes[o..]));
    client.send_raw(&batch).unwrap();
    let pong = client.next_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (op::PONG, &b"batched"[..])
    );
    assert_eq!(client.next_frame().text(), message);
}

#[test]
fn fragmented_pusher_message_is_reassembled() {
    let server = echo_server();
    let mut client = WsClient::pusher(server.addr);
    let ping = br#"{"event":"pusher:ping","data":{}}"#;
    client.send_frame(false, op::TEXT, &ping[..10]);
    client.send_frame(true, op::PING, b"wire-ping");
    client.send_frame(true, op::CONT, &ping[10..]);
    let pong = client.next_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (op::PONG, &b"wire-ping"[..])
    );
    client.expect_event("pusher:pong");
}

#[test]
fn message_over_max_message_size_is_closed_1009() {
    let server = echo_server();
    // Exactly the limit is fine.
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_frame(true, op::TEXT, &[b'a'; 1024]);
    assert_eq!(client.next_frame().payload.len(), 1024);
    // One byte more is not.
    client.send_frame(true, op::TEXT, &[b'a'; 1025]);
    expect_failed_with(&mut client, 1009);
    // The limit applies to the whole fragmented message.
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_frame(false, op::BINARY, &[1; 600]);
    client.send_frame(true, op::CONT, &[2; 600]);
    expect_failed_with(&mut client, 1009);
    // And on the Pusher endpoint.
    let mut client = WsClient::pusher(server.addr);
    client.send_frame(true, op::TEXT, &[b' '; 2000]);
    expect_failed_with(&mut client, 1009);
}

#[test]
fn oversize_declared_only_in_the_header_is_closed_1009() {
    let server = echo_server();
    // 16-bit length 60000, 64-bit length 2^40: header and mask only, no payload follows.
    let headers: [Vec<u8>; 2] = [vec![0x81, 0x80 | 126, 0xEA, 0x60, 1, 2, 3, 4], {
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&(1u64 << 40).to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }];
    for header in headers {
        let mut client = WsClient::connect(server.addr, ECHO);
        client.send_raw(&header).unwrap();
        let frame = client.next_frame_for(&format!("close 1009 after the header {header:02x?}"));
        assert_eq!(frame.close_code(), Some(1009), "{}", frame.describe());
        client.expect_eof();
    }
}

#[test]
fn client_close_1000_is_echoed_and_the_tcp_connection_closed() {
    let server = echo_server();
    for (name, mut client) in both_endpoints(&server) {
        client.send_close(1000, "bye");
        let frame = client.next_frame_for(&format!("the close echo on {name}"));
        assert_eq!(
            frame.close_code(),
            Some(1000),
            "{name}: {}",
            frame.describe()
        );
        client.expect_eof();
    }
    // A close without a code is answered with a close without a code.
    let mut client = WsClient::connect(server.addr, ECHO);
    client.send_frame(true, op::CLOSE, b"");
    let frame = client.next_frame();
    assert_eq!(
        (frame.opcode, frame.payload.len()),
        (op::CLOSE, 0),
        "{}",
        frame.describe()
    );
    client.expect_eof();
}

#[test]
fn invalid_close_code_is_closed_1002() {
    let server = echo_server();
    for code in [0u16, 999, 1005, 1006, 1015, 2000, 5000] {
        let mut client = WsClient::connect(server.addr, ECHO);
        client.send_frame(true, op::CLOSE, &common::close_payload(code, ""));
        let frame = client.next_frame_for(&format!("close 1002 after close code {code}"));
        assert_eq!(
            frame.close_code(),
            Some(1002),
            "code {code}: {}",
            frame.describe()
        );
        client.expect_eof();
    }
}

#[test]
fn close_reason_that_is_not_utf8_is_closed_1007() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, ECHO);
    let mut payload = common::close_payload(1000, "");
    payload.extend_from_slice(b"bad \xff reason");
    client.send_frame(true, op::CLOSE, &payload);
    expect_failed_with(&mut client, 1007);
}

#[test]
fn ping_with_the_largest_control_payload_gets_the_same_pong() {
    let server = echo_server();
    for (name, mut client) in both_endpoints(&server) {
        let payload: Vec<u8> = (0..125u8).collect();
        client.send_frame(true, op::PING, &payload);
        let pong = client.next_frame_for(&format!("pong on {name}"));
        assert_eq!((pong.opcode, pong.payload), (op::PONG, payload), "{name}");
        // An empty ping too.
        client.send_frame(true, op::PING, b"");
        let pong = client.next_frame();
        assert_eq!((pong.opcode, pong.payload.len()), (op::PONG, 0), "{name}");
        // Unsolicited pongs are ignored.
        client.send_frame(true, op::PONG, b"unsolicited");
        client.send_frame(true, op::PING, b"after");
        let pong = client.next_frame();
        assert_eq!(
            (pong.opcode, pong.payload.as_slice()),
            (op::PONG, &b"after"[..]),
            "{name}"
        );
    }
}
