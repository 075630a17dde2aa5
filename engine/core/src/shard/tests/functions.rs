//! Channel functions over the shards: a publish to a channel with a pipeline waits at the
//! channel's owner for the bridge's result, which every subscriber gets; whatever goes wrong
//! the message goes out unchanged; `PUT /associations` reaches every shard.

use super::*;
use crate::functions::{Associations, FunctionSettings, FunctionTable};
use bytes::Bytes;

use crate::link::FunctionOutcome;

const ASSOCIATIONS: &str = r#"{"applications":{"app-id":{"channels":[
    {"channelName":"news","functionNames":["upper","exclaim"]},
    {"channelName":"news-eu","functionNames":["never"]},
    {"channelName":"private-news","functionNames":["upper"]}
]}}}"#;

/// Two shards of a node alone with a bridge, `news…` channels through two functions.
fn functions_sim() -> Sim {
    let table = FunctionTable::parse(
        "upper=http://127.0.0.1:9/u,exclaim=http://127.0.0.1:9/e,never=http://127.0.0.1:9/n",
    )
    .unwrap();
    let associations = Associations::parse(ASSOCIATIONS.as_bytes(), &table).unwrap();
    let functions = FunctionSettings {
        table: Arc::new(table),
        associations: Arc::new(associations),
    };
    let mut sim = Sim::new_full(2, true, false, functions, |app| {
        app.enable_client_messages = true;
    });
    for shard in 0..2 {
        sim.shards[shard].handle_link_up();
        sim.link_output(shard);
    }
    sim
}

impl Sim {
    /// A subscriber of `channel` on each shard.
    fn subscribers(&mut self, channel: &str) -> [Client; 2] {
        let clients = [self.connect(0).0, self.connect(1).0];
        for client in clients {
            self.subscribe(client, channel, None, None);
            assert_eq!(
                names(&self.events(client)),
                ["pusher_internal:subscription_succeeded"]
            );
        }
        clients
    }

    fn trigger(&mut self, shard: usize, channel: &str, data: &str) {
        let body = serde_json::json!({"name":"e","channels":[channel],"data":data}).to_string();
        let (status, _) = self.rest(shard, "POST", "/apps/app-id/events", &[], &body);
        assert_eq!(status, 200);
    }

    /// The function requests every shard sent, as (shard, request).
    fn function_requests(&mut self) -> Vec<(usize, crate::link::FunctionRequest)> {
        let mut requests = Vec::new();
        for shard in 0..self.shards.len() {
            for message in self.link_output(shard) {
                if let LinkMessage::FunctionRequest(request) = message {
                    requests.push((shard, request));
                }
            }
        }
        requests
    }

    fn data_received(&mut self, client: Client) -> Vec<Value> {
        self.events(client)
            .iter()
            .map(|e| e["data"].clone())
            .collect()
    }
}

#[test]
fn the_owner_holds_the_message_and_publishes_the_functions_result() {
    let mut sim = functions_sim();
    let subs = sim.subscribers("news-1");
    // Published through either shard, the request comes from the channel's one owner.
    sim.trigger(0, "news-1", "first");
    sim.trigger(1, "news-1", "second");
    for client in subs {
        assert!(
            sim.events(client).is_empty(),
            "held until the functions answer"
        );
    }
    let requests = sim.function_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let owner = requests[0].0;
    assert!(requests.iter().all(|(shard, _)| *shard == owner));
    let (_, first) = &requests[0];
    assert_eq!(
        (first.app_id.as_str(), first.channel.as_str()),
        ("app-id", "news-1")
    );
    assert_eq!(&first.message[..], b"\"first\"");
    let names: Vec<&str> = first.functions.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["upper", "exclaim"],
        "the association whose pattern prefixes the name"
    );
    assert_eq!(first.functions[0].1, "http://127.0.0.1:9/u");
    for (result, (_, request)) in ["\"FIRST!\"", "{\"n\":2}"].iter().zip(&requests) {
        let outcome = FunctionOutcome::Done(Bytes::copy_from_slice(result.as_bytes()));
        sim.link_in(
            owner,
            LinkMessage::FunctionResult {
                request_id: request.request_id,
                outcome,
            },
        );
    }
    for client in subs {
        assert_eq!(
            sim.data_received(client),
            [Value::from("FIRST!"), serde_json::json!({"n":2})],
            "the results, in order, on both shards"
        );
    }
    // A late or repeated answer changes nothing.
    let again = LinkMessage::FunctionResult {
        request_id: requests[0].1.request_id,
        outcome: FunctionOutcome::Done(Bytes::from_static(b"\"again\"")),
    };
    sim.link_in(owner, again);
    for client in subs {
        assert!(sim.events(client).is_empty());
    }
    // The first matching association wins: `news` before `news-eu`.
    sim.trigger(0, "news-eu", "x");
    let requests = sim.function_requests();
    assert_eq!(requests[0].1.functions[0].0, "upper");
}

#[test]
fn failures_deliver_the_message_unchanged() {
    let mut sim = functions_sim();
    let subs = sim.subscribers("news");
    sim.trigger(0, "news", "a");
    sim.trigger(0, "news", "b");
    sim.trigger(0, "news", "c");
    let requests = sim.function_requests();
    let owner = requests[0].0;
    let outcomes = [
        FunctionOutcome::Failed("function \"upper\" answered 500".into()),
        FunctionOutcome::Done(Bytes::from_static(b"{not json")),
        FunctionOutcome::Done(Bytes::from_static(b"null")),
    ];
    for ((_, request), outcome) in requests.iter().zip(outcomes) {
        let message = LinkMessage::FunctionResult {
            request_id: request.request_id,
            outcome,
        };
        sim.link_in(owner, message);
    }
    for client in subs {
        assert_eq!(sim.data_received(client), ["a", "b", "c"]);
    }
    let stats = sim.shards[owner].stats();
    assert_eq!(
        (
            stats.function_pipelines_started,
            stats.function_pipelines_failed
        ),
        (3, 2),
        "null keeps the message without failing"
    );
}

#[test]
fn without_an_answer_the_message_goes_out_unchanged() {
    let mut sim = functions_sim();
    let subs = sim.subscribers("news");
    // Overdue: the bridge never answered.
    sim.trigger(0, "news", "late");
    assert_eq!(sim.function_requests().len(), 1);
    sim.tick(crate::limits::PIPELINE_WAIT_MS_MAX / 1_000 - 1);
    for client in subs {
        assert!(sim.events(client).is_empty());
    }
    sim.tick(2);
    for client in subs {
        assert_eq!(sim.data_received(client), ["late"]);
    }
    // The link goes down with a pipeline in flight, then no bridge at all.
    sim.trigger(0, "news", "stranded");
    let owner = sim.function_requests()[0].0;
    sim.shards[owner].handle_link_down();
    sim.settle();
    sim.trigger(1, "news", "alone");
    assert!(
        sim.function_requests().is_empty(),
        "nothing asks a bridge that is gone"
    );
    for client in subs {
        assert_eq!(sim.data_received(client), ["stranded", "alone"]);
    }
    // Channels without an association never wait.
    let other = sim.subscribers("weather");
    sim.trigger(0, "weather", "sun");
    for client in other {
        assert_eq!(sim.data_received(client), ["sun"]);
    }
}

#[test]
fn client_events_run_through_functions_and_skip_their_sender() {
    let mut sim = functions_sim();
    let channel = "private-news";
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(1);
    for (client, socket_id) in [(a, &a_id), (b, &b_id)] {
        let token = auth::channel_auth_token(KEY, SECRET, socket_id, channel, None);
        sim.subscribe(client, channel, Some(token), None);
        assert_eq!(
            names(&sim.events(client)),
            ["pusher_internal:subscription_succeeded"]
        );
    }
    let event = serde_json::json!({"event":"client-typing","channel":channel,"data":{"who":"a"}});
    sim.send(a, event);
    let requests = sim.function_requests();
    assert_eq!(requests.len(), 1);
    let (owner, request) = &requests[0];
    assert_eq!(&request.message[..], br#"{"who":"a"}"#);
    let outcome = FunctionOutcome::Done(Bytes::from_static(br#"{"who":"A"}"#));
    let result = LinkMessage::FunctionResult {
        request_id: request.request_id,
        outcome,
    };
    sim.link_in(*owner, result);
    let got = sim.events(b);
    assert_eq!(names(&got), ["client-typing"]);
    assert_eq!(got[0]["data"], serde_json::json!({"who":"A"}));
    assert!(sim.events(a).is_empty(), "the sender is still left out");
}

fn put_associations(sim: &mut Sim, shard: usize, token: &str) -> (u16, String) {
    let body = serde_json::json!({ "token": token }).to_string();
    let request = format!(
        "PUT /associations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let key = sim.shards[shard].handle_accept(sim.now_ms);
    sim.shards[shard].handle_bytes(key, request.as_bytes(), sim.now_ms);
    sim.settle();
    let raw = sim.raw_output(Client { shard, key });
    let text = String::from_utf8(raw).unwrap();
    let status: u16 = text[9..12].parse().unwrap();
    let body = text[text.find("\r\n\r\n").unwrap() + 4..].to_owned();
    (status, body)
}

fn update_token(document: &str, secret: &str) -> String {
    let claims: Value = serde_json::from_str(document).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[test]
fn put_associations_replaces_them_on_every_shard() {
    let mut sim = functions_sim();
    let subs = sim.subscribers("sport");
    sim.trigger(1, "sport", "unchanged");
    assert!(sim.function_requests().is_empty());
    for client in subs {
        assert_eq!(sim.data_received(client), ["unchanged"]);
    }
    let document = r#"{"applications":{"app-id":{"channels":[
        {"channelName":"sp","functionNames":["upper"]}]}}}"#;
    assert_eq!(
        put_associations(&mut sim, 0, &update_token(document, "forged")),
        (400, "Invalid JWT".to_owned())
    );
    let unknown = document.replace("upper", "nope");
    let (status, text) = put_associations(&mut sim, 0, &update_token(&unknown, SECRET));
    assert_eq!(status, 400);
    assert!(text.starts_with("Invalid associations: "), "{text}");
    assert_eq!(
        put_associations(&mut sim, 0, &update_token(document, SECRET)),
        (200, "OK".to_owned())
    );
    // Applied on the other shard too: its publish goes through the new pipeline.
    sim.trigger(1, "sport", "now");
    let requests = sim.function_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].1.functions[0].0, "upper");
    // The old associations are gone.
    sim.trigger(1, "news", "plain");
    assert_eq!(sim.function_requests().len(), 0);
}

#[test]
fn one_apps_flood_is_bounded_and_goes_out_unchanged() {
    use crate::limits::PENDING_PIPELINES_PER_APP_MAX;
    let mut sim = functions_sim();
    let subs = sim.subscribers("news");
    // The owner holds the app's share of its table; one more goes out unchanged at once.
    let owner = {
        sim.trigger(0, "news", "0");
        sim.function_requests()[0].0
    };
    for n in 1..PENDING_PIPELINES_PER_APP_MAX {
        sim.trigger(owner, "news", &n.to_string());
    }
    assert_eq!(
        sim.function_requests().len(),
        PENDING_PIPELINES_PER_APP_MAX - 1
    );
    for client in subs {
        assert!(sim.events(client).is_empty());
    }
    sim.trigger(owner, "news", "over");
    assert!(sim.function_requests().is_empty());
    for client in subs {
        assert_eq!(sim.data_received(client), ["over"]);
    }
    // Given up on, they all go out unchanged, and the app has its share again.
    sim.shards[owner].handle_link_down();
    sim.settle();
    for client in subs {
        assert_eq!(sim.events(client).len(), PENDING_PIPELINES_PER_APP_MAX);
    }
    sim.shards[owner].handle_link_up();
    sim.link_output(owner);
    sim.trigger(owner, "news", "again");
    assert_eq!(sim.function_requests().len(), 1);
}
