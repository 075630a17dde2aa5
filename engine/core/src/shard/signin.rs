//! Sign-in on a shard (`pusher:signin`): the signature and user object, the per-user index of
//! connections, and the owner's online state and watchlists (a user's owner tells its watchers
//! when it comes online or goes offline).

use std::sync::Arc;

use super::conn::SignedIn;
use super::frames::text_frame;
use super::message::{AppIndex, ConnRef, ShardMessage};
use super::Shard;
use crate::limits;
use crate::pusher::{auth, close, server_message, user};

impl Shard {
    /// A client's `pusher:signin`; a bad signature or user object closes with 4009.
    pub(super) fn signin(&mut self, key: u32, app: AppIndex, auth_token: &str, user_data: &str) {
        let conn = &self.conns[key as usize];
        let socket_id = self.socket_id(conn.serial);
        let app_config = self.apps.get(app);
        if !auth::verify_signin(
            &app_config.key,
            &app_config.secret,
            &socket_id,
            user_data,
            auth_token,
        ) {
            self.close_pusher(key, close::UNAUTHORIZED, "Invalid sign-in signature");
            return;
        }
        let parsed = match user::parse_signin_user(user_data) {
            Ok(parsed) => parsed,
            Err(err) => {
                self.close_pusher(key, close::UNAUTHORIZED, &err.message);
                return;
            }
        };
        // A second sign-in replaces the first.
        if let Some(previous) = self.conns[key as usize].signed_in.take() {
            self.sign_out(key, app, &previous);
        }
        let user_id: Arc<str> = Arc::from(parsed.id.as_str());
        let watchlist: Vec<Arc<str>> = parsed
            .watchlist
            .iter()
            .map(|id| Arc::from(id.as_str()))
            .collect();
        let conn_ref = self.sign_in(key, app, &user_id, &watchlist);
        self.send_text(key, &server_message::signin_success(user_data));
        if parsed.watchlist_truncated {
            let message = format!(
                "Watchlist over limit: only the first {} ids are watched",
                limits::WATCHLIST_IDS_MAX
            );
            self.send_error(key, close::WATCHLIST_OVER_LIMIT, &message);
        }
        self.announce_online(app, &user_id, watchlist, conn_ref);
    }

    /// Marks the connection signed in as `user_id` and puts it in the per-user index.
    fn sign_in(
        &mut self,
        key: u32,
        app: AppIndex,
        user_id: &Arc<str>,
        watchlist: &[Arc<str>],
    ) -> ConnRef {
        let conn = &mut self.conns[key as usize];
        conn.authorized = true;
        conn.signed_in = Some(Box::new(SignedIn {
            user_id: user_id.clone(),
            watchlist: watchlist.to_vec(),
        }));
        let conn_ref = ConnRef {
            shard: self.settings.shard_index,
            key,
            serial: conn.serial,
        };
        self.registry.add_user_conn(app, user_id, key);
        conn_ref
    }

    /// Tells the user's owner it is online and each watched user's owner who watches it.
    fn announce_online(
        &mut self,
        app: AppIndex,
        user_id: &Arc<str>,
        watchlist: Vec<Arc<str>>,
        conn: ConnRef,
    ) {
        let owner = self.owner_of(app, user_id);
        self.route(
            owner,
            ShardMessage::UserOnline {
                app,
                user_id: user_id.clone(),
            },
        );
        for watched in watchlist {
            let owner = self.owner_of(app, &watched);
            self.route(
                owner,
                ShardMessage::Watch {
                    app,
                    watcher: user_id.clone(),
                    watched,
                    conn,
                },
            );
        }
    }

    /// Undoes a sign-in: the per-user index, the owner's online state and the watches.
    pub(super) fn sign_out(&mut self, key: u32, app: AppIndex, signed_in: &SignedIn) {
        self.registry.remove_user_conn(app, &signed_in.user_id, key);
        let owner = self.owner_of(app, &signed_in.user_id);
        self.route(
            owner,
            ShardMessage::UserOffline {
                app,
                user_id: signed_in.user_id.clone(),
            },
        );
        for watched in &signed_in.watchlist {
            let owner = self.owner_of(app, watched);
            self.route(
                owner,
                ShardMessage::Unwatch {
                    app,
                    watcher: signed_in.user_id.clone(),
                    watched: watched.clone(),
                },
            );
        }
    }

    /// Owner side: the watchers of `user_id` hear it went `online` / `offline`, wherever they
    /// are connected.
    pub(super) fn notify_watchers(
        &mut self,
        app: AppIndex,
        user_id: &Arc<str>,
        watchers: Vec<Arc<str>>,
        event: &str,
    ) {
        if watchers.is_empty() {
            return;
        }
        let ids = [user_id.to_string()];
        let frame = text_frame(&server_message::watchlist_events(&[(event, &ids)]));
        for watcher in watchers {
            let message = ShardMessage::DeliverToUser {
                app,
                user_id: watcher,
                frame: frame.clone(),
            };
            self.broadcast(message.clone());
            self.handle_message_inner(message);
        }
    }

    /// Owner side of a watch: the watcher hears at once when the watched user is online.
    pub(super) fn owner_watch(
        &mut self,
        app: AppIndex,
        watcher: &Arc<str>,
        watched: Arc<str>,
        conn: ConnRef,
    ) {
        if self.owner.watch(app, watcher, &watched) {
            let ids = [watched.to_string()];
            let json = server_message::watchlist_events(&[("online", &ids)]);
            self.route(
                conn.shard,
                ShardMessage::DeliverToConn {
                    conn,
                    frame: text_frame(&json),
                },
            );
        }
    }
}
