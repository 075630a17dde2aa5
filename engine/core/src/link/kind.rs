//! The link's wire codes: every message [`Kind`] with its code (the byte after a frame's length
//! prefix) and the codes of webhook event kinds. Codes are part of the protocol: never renumber
//! one, only add.

use super::error::LinkError;
use super::message::LinkMessage;
use crate::app::WebhookEventType;

/// Every message kind with its wire code. 1–127: sent by the engine (some both ways, as
/// noted); 129 and up: sent by the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    Hello = 1,
    Subscribe = 2,
    Unsubscribe = 3,
    Publish = 4,
    MemberJoin = 5,
    MemberLeave = 6,
    MembersQuery = 7,
    MembersResync = 8,
    ResyncDone = 9,
    WebhookConfig = 10,
    Hook = 11,
    AuthRequest = 12,
    CacheQuery = 13,
    /// Both ways.
    UserCommand = 14,
    /// Both ways.
    ChannelsQuery = 15,
    /// Both ways.
    ChannelsAnswer = 16,
    /// Both ways.
    ConnectionCounts = 17,
    FunctionRequest = 18,
    /// Both ways.
    Associations = 19,
    SlipCall = 20,
    /// Both ways.
    SlipCommands = 21,
    Welcome = 129,
    Subscribed = 130,
    Deliver = 131,
    Stats = 132,
    MembersSnapshot = 133,
    MemberAdded = 134,
    MemberRemoved = 135,
    AuthResponse = 136,
    CacheAnswer = 137,
    FunctionResult = 138,
    SlipAnswer = 139,
}

impl Kind {
    /// Every kind, for decoding a code.
    const ALL: [Kind; 32] = [
        Kind::Hello,
        Kind::Subscribe,
        Kind::Unsubscribe,
        Kind::Publish,
        Kind::MemberJoin,
        Kind::MemberLeave,
        Kind::MembersQuery,
        Kind::MembersResync,
        Kind::ResyncDone,
        Kind::WebhookConfig,
        Kind::Hook,
        Kind::AuthRequest,
        Kind::CacheQuery,
        Kind::UserCommand,
        Kind::ChannelsQuery,
        Kind::ChannelsAnswer,
        Kind::ConnectionCounts,
        Kind::Welcome,
        Kind::Subscribed,
        Kind::Deliver,
        Kind::Stats,
        Kind::MembersSnapshot,
        Kind::MemberAdded,
        Kind::MemberRemoved,
        Kind::AuthResponse,
        Kind::CacheAnswer,
        Kind::FunctionRequest,
        Kind::Associations,
        Kind::FunctionResult,
        Kind::SlipCall,
        Kind::SlipAnswer,
        Kind::SlipCommands,
    ];

    /// The wire code.
    pub(super) const fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a wire code; an unknown code ends the link.
    pub(super) fn from_code(code: u8) -> Result<Kind, LinkError> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
            .ok_or(LinkError::UnknownKind(code))
    }

    /// The kind of a message.
    pub(super) fn of(message: &LinkMessage) -> Kind {
        match message {
            LinkMessage::Hello { .. } => Kind::Hello,
            LinkMessage::Welcome { .. } => Kind::Welcome,
            LinkMessage::Subscribe { .. } => Kind::Subscribe,
            LinkMessage::Subscribed { .. } => Kind::Subscribed,
            LinkMessage::Unsubscribe { .. } => Kind::Unsubscribe,
            LinkMessage::Publish(_) => Kind::Publish,
            LinkMessage::Deliver(_) => Kind::Deliver,
            LinkMessage::Stats(_) => Kind::Stats,
            LinkMessage::MemberJoin(..) => Kind::MemberJoin,
            LinkMessage::MemberLeave(..) => Kind::MemberLeave,
            LinkMessage::MembersQuery(..) => Kind::MembersQuery,
            LinkMessage::MembersResync(..) => Kind::MembersResync,
            LinkMessage::ResyncDone => Kind::ResyncDone,
            LinkMessage::MembersSnapshot(..) => Kind::MembersSnapshot,
            LinkMessage::MemberAdded(..) => Kind::MemberAdded,
            LinkMessage::MemberRemoved(..) => Kind::MemberRemoved,
            LinkMessage::WebhookConfig(_) => Kind::WebhookConfig,
            LinkMessage::Hook(_) => Kind::Hook,
            LinkMessage::AuthRequest(_) => Kind::AuthRequest,
            LinkMessage::AuthResponse { .. } => Kind::AuthResponse,
            LinkMessage::CacheQuery { .. } => Kind::CacheQuery,
            LinkMessage::CacheAnswer { .. } => Kind::CacheAnswer,
            LinkMessage::ChannelsQuery { .. } => Kind::ChannelsQuery,
            LinkMessage::ChannelsAnswer { .. } => Kind::ChannelsAnswer,
            LinkMessage::ConnectionCounts(_) => Kind::ConnectionCounts,
            LinkMessage::UserCommand { .. } => Kind::UserCommand,
            LinkMessage::FunctionRequest(_) => Kind::FunctionRequest,
            LinkMessage::FunctionResult { .. } => Kind::FunctionResult,
            LinkMessage::Associations(_) => Kind::Associations,
            LinkMessage::SlipCall(_) => Kind::SlipCall,
            LinkMessage::SlipAnswer { .. } => Kind::SlipAnswer,
            LinkMessage::SlipCommands { .. } => Kind::SlipCommands,
        }
    }
}

/// Wire code of a webhook event kind (stable: part of the protocol, not the enum's order).
pub(super) fn hook_kind_code(kind: WebhookEventType) -> u8 {
    match kind {
        WebhookEventType::ChannelOccupied => 1,
        WebhookEventType::ChannelVacated => 2,
        WebhookEventType::MemberAdded => 3,
        WebhookEventType::MemberRemoved => 4,
        WebhookEventType::ClientEvent => 5,
        WebhookEventType::CacheMiss => 6,
        WebhookEventType::SubscriptionCount => 7,
    }
}

/// The webhook event kind of a wire code; an unknown code ends the link.
pub(super) fn hook_kind_from_code(code: u8) -> Result<WebhookEventType, LinkError> {
    WebhookEventType::ALL
        .into_iter()
        .find(|kind| hook_kind_code(*kind) == code)
        .ok_or(LinkError::UnknownKind(code))
}
