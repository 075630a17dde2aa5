//! The bridge's Redis payload decoders (`ringcast_bridge::redis::envelope`): event envelopes
//! (`decode_envelope`), user commands (`decode_user_command`) and member events
//! (`is_member_event`, `decode_member_event`) on random bytes. Checks: no panic; whatever
//! decodes encodes again (`encode_envelope`, `encode_user_command`, `member_event_head` and
//! `put_field` as the Lua scripts write them) to a payload that decodes to the same thing; a
//! payload is at most one of the kinds; magic prefixes decide the kind.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringcast_bridge::redis::envelope::{
    decode_envelope, decode_member_event, decode_user_command, encode_envelope,
    encode_user_command, is_member_event, is_reserved_node_id, member_event_head, put_field,
    MEMBER_EVENT_MAGIC, USER_COMMAND_MAGIC,
};
use ringcast_core::link::LinkMessage;

fn member_event(message: &LinkMessage) -> Vec<u8> {
    match message {
        LinkMessage::MemberAdded(channel, member) => {
            let mut out = member_event_head(&channel.app_id, &channel.channel);
            out.push(b'A');
            put_field(&mut out, member.user_id.as_bytes());
            put_field(&mut out, &member.user_info);
            out
        }
        LinkMessage::MemberRemoved(channel, user_id) => {
            let mut out = member_event_head(&channel.app_id, &channel.channel);
            out.push(b'R');
            put_field(&mut out, user_id.as_bytes());
            out
        }
        other => panic!("a member event decoded to {other:?}"),
    }
}

fn check(payload: &[u8]) {
    let bytes = Bytes::copy_from_slice(payload);
    assert_eq!(
        is_member_event(payload),
        payload.starts_with(MEMBER_EVENT_MAGIC)
    );

    let envelope = decode_envelope(bytes.clone());
    if let Ok((node_id, event)) = &envelope {
        let encoded = encode_envelope(*node_id, event).expect("a decoded event encodes");
        assert_eq!(&encoded[..], payload, "envelope encoding is canonical");
        assert_eq!(
            decode_envelope(encoded).as_ref(),
            Ok(&(*node_id, event.clone()))
        );
    }

    let command = decode_user_command(payload);
    if let Some((node_id, message)) = &command {
        assert!(payload.starts_with(USER_COMMAND_MAGIC));
        assert!(matches!(
            message,
            LinkMessage::UserCommand { .. }
                | LinkMessage::Associations(_)
                | LinkMessage::SlipCommands { .. }
        ));
        let encoded = encode_user_command(*node_id, message).expect("a decoded command encodes");
        assert_eq!(
            decode_user_command(&encoded).as_ref(),
            Some(&(*node_id, message.clone()))
        );
    }

    let member = decode_member_event(bytes);
    if let Ok(message) = &member {
        assert!(is_member_event(payload));
        let encoded = member_event(message);
        assert_eq!(
            decode_member_event(Bytes::from(encoded)).as_ref(),
            Ok(message)
        );
    }

    // A payload is one kind at most: the node ids that would make an envelope look like the
    // other kinds are reserved, and the bridge refuses them.
    if let Ok((node_id, _)) = envelope {
        if command.is_some() || member.is_ok() {
            assert!(
                is_reserved_node_id(node_id),
                "ambiguous payload with node id {node_id}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // The same bytes behind each magic prefix, so the fuzzer reaches every decoder at once.
    for magic in [MEMBER_EVENT_MAGIC, USER_COMMAND_MAGIC] {
        let mut payload = magic.to_vec();
        payload.extend_from_slice(data);
        check(&payload);
    }
});
