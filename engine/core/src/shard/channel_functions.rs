//! Channel functions on a shard: a publish to a channel with a pipeline (from REST, a client
//! event or a Socket.IO `publish`) goes to the channel's owner shard, which holds it, asks the
//! bridge to run the pipeline (`FunctionRequest`), and publishes the result when it comes
//! (`FunctionResult`). One owner per channel and one FIFO per channel in the bridge keep a
//! channel's messages in order. Whatever goes wrong (a function's error or timeout, an unusable
//! answer, no bridge, the bounds) the message goes out unchanged and the app's admin room hears
//! why: a function can change a message, never lose one. Also `PUT /associations`, which
//! replaces every app's associations on every shard and, through the bridge, every node.

use std::sync::Arc;

use bytes::Bytes;

use super::bridge_waits::PendingPipeline;
use super::http_reply::{HttpOutcome, Reply};
use super::message::{AppIndex, ShardMessage};
use super::Shard;
use crate::functions::{checked_result, verify_update, Associations, Pipeline, Publication};
use crate::limits::{PENDING_PIPELINES_PER_APP_MAX, PENDING_PIPELINE_BYTES_MAX};
use crate::link::{FunctionOutcome, FunctionRequest, LinkMessage};
use crate::socketio::rooms;

impl Shard {
    /// The pipeline of a channel, if the app's associations give it one.
    pub(super) fn functions_of(&self, app: AppIndex, channel: &str) -> Option<Arc<Pipeline>> {
        let app_id = &self.apps.get(app).id;
        if !self.associations.has_app(app_id) {
            return None; // the common case: one map lookup
        }
        self.associations.pipeline(app_id, channel).cloned()
    }

    /// Hands a publish with a pipeline to the channel's owner shard.
    pub(super) fn publish_through_functions(
        &mut self,
        app: AppIndex,
        channel: &str,
        publication: Publication,
        pipeline: Arc<Pipeline>,
    ) {
        let owner = self.owner_of(app, channel);
        let message = ShardMessage::RunFunctions {
            app,
            channel: Arc::from(channel),
            publication: Box::new(publication),
            pipeline,
        };
        self.route(owner, message);
    }

    /// The owner: holds the message and asks the bridge to run its pipeline, or publishes it
    /// unchanged when that cannot be done.
    pub(super) fn start_functions(
        &mut self,
        app: AppIndex,
        channel: &Arc<str>,
        publication: Publication,
        pipeline: Arc<Pipeline>,
    ) {
        self.stats.function_pipelines_started += 1;
        if !self.link.is_up() {
            let reason = "the function service (bridge) is not available";
            return self.publish_unchanged(app, channel, publication, reason);
        }
        let bytes = publication.held_bytes();
        if self.waits.pipeline_bytes + bytes > PENDING_PIPELINE_BYTES_MAX {
            let reason = "too many messages waiting for functions on this node";
            return self.publish_unchanged(app, channel, publication, reason);
        }
        let app_count = self.waits.pipelines_by_app.get(app);
        if app_count >= PENDING_PIPELINES_PER_APP_MAX {
            let reason = "too many of this app's messages waiting for functions on this node";
            return self.publish_unchanged(app, channel, publication, reason);
        }
        let message = Bytes::copy_from_slice(publication.message_json().as_bytes());
        let pending = PendingPipeline {
            app,
            channel: channel.clone(),
            publication,
        };
        let request_id = match self.waits.pipelines.insert(self.now_ms, pending) {
            Ok(id) => id,
            Err(full) => {
                let reason = "too many messages waiting for functions on this node";
                return self.publish_unchanged(app, channel, full.0.publication, reason);
            }
        };
        self.waits.pipeline_bytes += bytes;
        self.waits.pipelines_by_app.add(app);
        let request = FunctionRequest {
            request_id,
            app_id: self.apps.get(app).id.clone(),
            channel: channel.to_string(),
            message,
            functions: pipeline.functions.clone(),
        };
        self.link.send(LinkMessage::FunctionRequest(request));
    }

    /// The bridge's answer: the result goes out, or the message unchanged.
    pub(super) fn function_result(&mut self, request_id: u32, outcome: FunctionOutcome) {
        let Some(pending) = self.take_pipeline(request_id) else {
            return; // given up already (timeout or link down)
        };
        let PendingPipeline {
            app,
            channel,
            publication,
        } = pending;
        match outcome {
            FunctionOutcome::Done(result) => match checked_result(&result) {
                Ok(result) => {
                    self.publish_publication(app, &channel, publication, result.as_deref())
                }
                Err(reason) => self.publish_unchanged(app, &channel, publication, reason),
            },
            FunctionOutcome::Failed(reason) => {
                self.publish_unchanged(app, &channel, publication, &reason);
            }
        }
    }

    /// A pipeline the bridge will not answer: overdue (`timeout`) or the link went down.
    pub(super) fn functions_unanswered(&mut self, pending: PendingPipeline, timeout: bool) {
        self.release_pipeline(&pending);
        let reason = if timeout {
            "the functions did not answer in time"
        } else {
            "the function service (bridge) went away"
        };
        self.publish_unchanged(pending.app, &pending.channel, pending.publication, reason);
    }

    fn take_pipeline(&mut self, request_id: u32) -> Option<PendingPipeline> {
        let pending = self.waits.pipelines.take(request_id)?;
        self.release_pipeline(&pending);
        Some(pending)
    }

    /// A pipeline taken out of the table gives back its bytes and its app's slot.
    fn release_pipeline(&mut self, pending: &PendingPipeline) {
        let waits = &mut self.waits;
        waits.pipeline_bytes = waits
            .pipeline_bytes
            .saturating_sub(pending.publication.held_bytes());
        waits.pipelines_by_app.remove(pending.app);
    }

    /// Publishes the message as it was sent and tells the app's admin room why.
    fn publish_unchanged(
        &mut self,
        app: AppIndex,
        channel: &str,
        publication: Publication,
        reason: &str,
    ) {
        self.stats.function_pipelines_failed += 1;
        self.publish_publication(app, channel, publication, None);
        let args = rooms::function_error_args(&self.apps.get(app).id, channel, reason);
        self.publish_admin_status(app, args);
    }

    /// Publishes a held message, with `result` as its message when there is one.
    fn publish_publication(
        &mut self,
        app: AppIndex,
        channel: &str,
        publication: Publication,
        result: Option<&str>,
    ) {
        let except = publication.except_socket_id().map(str::to_owned);
        let message = publication.into_published(channel, result);
        let now_ms = self.now_ms;
        self.publish(app, channel, message, except.as_deref(), now_ms);
    }

    /// `PUT /associations`: checks the token and its document, then replaces every app's
    /// associations on every shard of this node and, through the bridge, of every node.
    pub(super) fn put_associations(&mut self, body: &[u8]) -> HttpOutcome {
        let secret = self.settings.socketio.jwt_secret.as_deref();
        let table = &self.settings.functions.table;
        let associations = match verify_update(body, secret, table, self.unix_s) {
            Ok(associations) => Arc::new(associations),
            Err(err) => {
                self.stats.associations_refused += 1;
                return text_reply(err.status(), err.text());
            }
        };
        self.stats.associations_updates += 1;
        if self.link.is_cluster() {
            let document = associations.document().clone();
            self.link
                .send_to_cluster(|| LinkMessage::Associations(document));
        }
        self.broadcast(ShardMessage::Associations(associations.clone()));
        self.associations = associations;
        text_reply(200, "OK".to_owned())
    }

    /// Another node's accepted document, for this shard (the bridge hands it to every shard).
    pub(super) fn associations_from_link(&mut self, document: &[u8]) {
        match Associations::parse(document, &self.settings.functions.table) {
            Ok(associations) => {
                self.stats.associations_updates += 1;
                self.associations = Arc::new(associations);
            }
            // Another node configured with functions this one lacks: keep what we have.
            Err(_) => self.stats.associations_refused += 1,
        }
    }
}

fn text_reply(status: u16, text: String) -> HttpOutcome {
    HttpOutcome::Reply(Reply {
        route: "associations",
        status,
        content_type: "text/plain",
        body: text.into_bytes(),
    })
}
