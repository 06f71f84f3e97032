//! The shared directory of a relay cluster, on Redis: which host key owns
//! which computer ID (first claim wins, across every node at once) and
//! which node holds each online host's control connection (expiring unless
//! the node renews it with the host's heartbeat).
//!
//! Every change is one Lua script, so that Redis runs it atomically: two
//! nodes racing for one new ID give it to exactly one key. Keys are
//! `thin:{ID}:key` (the host key, base64), `thin:{ID}:released` (keys the
//! operator released the ID from) and `thin:{ID}:at` (the node's cluster
//! address). The braces would keep one ID's keys in one Redis Cluster slot,
//! but this client speaks to one Redis server (with replicas and Sentinel
//! failover in front of it if wanted), not to a Redis Cluster.
//!
//! A node that cannot reach Redis keeps what it has (its online hosts and
//! their sessions) and refuses what needs the directory; the connection
//! manager reconnects by itself.

use std::time::Duration;

use base64::Engine as _;
use proto::ComputerId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use crate::registry::Claim;

/// How long one directory call may take before it counts as unreachable
/// (a host or client waits on it).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
#[error("the relay's directory (Redis) cannot be reached: {why}")]
pub struct Unreachable {
    why: String,
    /// Redis answered, with an error: asking again the same way will not
    /// help (a connection problem may pass).
    answered: bool,
}

impl Unreachable {
    fn new(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            answered: false,
        }
    }

    /// Redis answered what no script here returns.
    fn odd(answer: &str) -> Self {
        Self {
            why: format!("unexpected answer {answer:?}"),
            answered: true,
        }
    }

    /// Whether Redis itself refused the call (not a connection problem).
    pub fn answered(&self) -> bool {
        self.answered
    }
}

impl From<redis::RedisError> for Unreachable {
    fn from(e: redis::RedisError) -> Self {
        // A script that fails on what it finds (a key of another type) will
        // fail again; LOADING, READONLY, BUSY, OOM and the like pass.
        let refused = matches!(e.code(), Some("WRONGTYPE" | "ERR"));
        Self {
            why: e.to_string(),
            answered: refused,
        }
    }
}

/// What importing one ID of a relay's file did.
#[derive(Debug, PartialEq, Eq)]
pub enum Imported {
    Added,
    /// The directory had this binding.
    AlreadyThere,
    /// The file knew only keys released from the ID; they are released in
    /// the directory too.
    Released,
    /// The directory binds the ID to another key, which keeps it.
    HeldByAnother,
    /// The file releases the very key that is (or would be) bound: the
    /// directory is left as it was for the operator to decide.
    Conflict,
}

/// Where a client's host is, as the directory knows it.
#[derive(Debug, PartialEq, Eq)]
pub enum Whereabouts {
    /// No host key holds this ID.
    Unknown,
    /// Bound, but no node holds its control connection.
    Offline,
    /// Online at the node with this cluster address.
    At(String),
}

/// What a node learns when it renews an online host's presence.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Still this key's; present at this node for another while.
    Held,
    /// The operator released the ID, or another key holds it now: the
    /// host is let go.
    Lost,
}

pub struct Directory {
    redis: ConnectionManager,
    /// This node's cluster address, as other nodes reach it.
    node: String,
    /// How long a presence lasts without renewal.
    presence: Duration,
    claimable: Script,
    claim: Script,
    renew: Script,
    leave: Script,
    unbind: Script,
    import: Script,
    import_done: Script,
    /// False while this node brings its own file into the directory: until
    /// then a claim or a look-up could contradict what the file knows.
    imported: tokio::sync::watch::Sender<bool>,
}

// 2: free, but a node is importing its file (which may bind it).
const CLAIMABLE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then return 2 end
return 1
";

// Also answers which node held the host's presence before (or '').
const CLAIM: &str = r"
local bound = redis.call('GET', KEYS[1])
if bound == ARGV[1] then
  local was = redis.call('GET', KEYS[3]) or ''
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
  return {'known', was}
elseif bound then
  return {'taken', ''}
elseif redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {'released', ''}
elseif redis.call('EXISTS', KEYS[4]) == 1 then
  return {'importing', ''}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return {'new', ''}
";

// A directory that lost its data (Redis restarted without persistence)
// learns the binding back from the host that proved its key; one the
// operator released, or another key holds, is not given back.
const RENEW: &str = r"
local bound = redis.call('GET', KEYS[1])
if not bound then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'lost' end
  redis.call('SET', KEYS[1], ARGV[1])
elseif bound ~= ARGV[1] then
  return 'lost'
end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 'held'
";

// Only this node's presence: the host may be online at another node now.
const LEAVE: &str = r"
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 0
";

const UNBIND: &str = r"
local key = redis.call('GET', KEYS[1])
if not key then return false end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SADD', KEYS[2], key)
return key
";

// A binding and the released keys of a relay's own file, added where the
// directory has nothing for them; a binding the directory holds for another
// key stays (first claim wins there too). A key both bound and released
// is never written: the operator decides.
const IMPORT: &str = r"
local bound = redis.call('GET', KEYS[1])
for i = 2, #ARGV do
  if ARGV[i] == ARGV[1] or ARGV[i] == bound then return 'conflict' end
end
for i = 2, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
if ARGV[1] == '' then return 'released' end
if bound == ARGV[1] then return 'same' end
if bound then return 'other' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'other' end
redis.call('SET', KEYS[1], ARGV[1])
return 'added'
";

/// Set while a node brings its own file into the directory: no new ID is
/// bound anywhere meanwhile (the file may bind it).
const IMPORTING: &str = "thin:importing";

/// How long the import mark lasts unless renewed (a node that dies while
/// importing holds the cluster's new IDs no longer).
pub const IMPORT_MARK: Duration = Duration::from_secs(30);

// Only the node that set the mark takes it away.
const IMPORT_DONE: &str = r"
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
return 0
";

fn keys(id: &ComputerId) -> [String; 4] {
    [
        format!("thin:{{{id}}}:key"),
        format!("thin:{{{id}}}:released"),
        format!("thin:{{{id}}}:at"),
        IMPORTING.to_owned(),
    ]
}

/// Why a claim waits: a node is importing its file.
const IMPORT_UNDER_WAY: &str =
    "a relay node is bringing its own hosts.jsonl into the directory; try again shortly";

fn encode(key: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

impl Directory {
    /// The directory at `url` (`redis://host:port[/db]`) for the node
    /// reached at `node`; presence lasts `presence` without renewal.
    /// Connects lazily: a node starts even while Redis is down.
    pub fn open(url: &str, node: String, presence: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("bad --directory {url:?}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            // A few quick retries per call; the next call tries again.
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("cannot use the directory at {url:?}: {e}"))?;
        Ok(Self {
            redis,
            node,
            presence,
            claimable: Script::new(CLAIMABLE),
            claim: Script::new(CLAIM),
            renew: Script::new(RENEW),
            leave: Script::new(LEAVE),
            unbind: Script::new(UNBIND),
            import: Script::new(IMPORT),
            import_done: Script::new(IMPORT_DONE),
            imported: tokio::sync::watch::Sender::new(true),
        })
    }

    /// Holds claims and look-ups until [`Self::release`]: this node is
    /// bringing its own file into the directory.
    pub fn hold(&self) {
        self.imported.send_replace(false);
    }

    /// The file is in the directory (or given up on): claims go ahead.
    pub fn release(&self) {
        self.imported.send_replace(true);
    }

    /// Waits (a call's time at most) until claims may go ahead.
    async fn ready(&self) -> Result<(), Unreachable> {
        let mut imported = self.imported.subscribe();
        let wait = tokio::time::timeout(CALL_TIMEOUT, imported.wait_for(|done| *done)).await;
        if matches!(wait, Ok(Ok(_))) {
            return Ok(());
        }
        Err(Unreachable::new(
            "this node is still bringing its own hosts.jsonl into the directory",
        ))
    }

    /// This node's cluster address.
    pub fn node(&self) -> &str {
        &self.node
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        id: &ComputerId,
        args: &[&str],
    ) -> Result<T, Unreachable> {
        let mut invocation = script.prepare_invoke();
        for key in keys(id) {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut redis = self.redis.clone();
        tokio::time::timeout(CALL_TIMEOUT * 2, invocation.invoke_async(&mut redis))
            .await
            .map_err(|_| Unreachable::new("no answer in time"))?
            .map_err(Unreachable::from)
    }

    fn presence_ms(&self) -> String {
        self.presence.as_millis().to_string()
    }

    /// Whether `id` is free for `key` to claim as a new binding.
    pub async fn claimable(&self, id: &ComputerId, key: &[u8]) -> Result<bool, Unreachable> {
        self.ready().await?;
        let free: i64 = self.run(&self.claimable, id, &[&encode(key)]).await?;
        if free == 2 {
            return Err(Unreachable::new(IMPORT_UNDER_WAY));
        }
        Ok(free == 1)
    }

    /// Binds `id` to `key` on first claim and marks the host present here;
    /// also the other node that held its presence until now, if one did.
    pub async fn claim(
        &self,
        id: &ComputerId,
        key: &[u8],
    ) -> Result<(Claim, Option<String>), Unreachable> {
        self.ready().await?;
        let args = [&encode(key), self.node.as_str(), &self.presence_ms()];
        let (outcome, was): (String, String) = self.run(&self.claim, id, &args).await?;
        let claim = match outcome.as_str() {
            "new" => Claim::New,
            "known" => Claim::Known,
            "taken" => Claim::Taken,
            "released" => Claim::Released,
            "importing" => return Err(Unreachable::new(IMPORT_UNDER_WAY)),
            other => return Err(Unreachable::odd(other)),
        };
        let elsewhere = (!was.is_empty() && was != self.node).then_some(was);
        Ok((claim, elsewhere))
    }

    /// Renews the presence of the host of `id` (with `key`) at this node.
    pub async fn renew(&self, id: &ComputerId, key: &[u8]) -> Result<Renewal, Unreachable> {
        let args = [&encode(key), self.node.as_str(), &self.presence_ms()];
        let outcome: String = self.run(&self.renew, id, &args).await?;
        Ok(if outcome == "held" {
            Renewal::Held
        } else {
            Renewal::Lost
        })
    }

    /// The host of `id` left this node.
    pub async fn leave(&self, id: &ComputerId) -> Result<(), Unreachable> {
        let _: i64 = self.run(&self.leave, id, &[self.node.as_str()]).await?;
        Ok(())
    }

    /// Where the host of `id` is.
    pub async fn find(&self, id: &ComputerId) -> Result<Whereabouts, Unreachable> {
        self.ready().await?;
        let [key, _, at, _] = keys(id);
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.exists(key).get(at);
        let lookup = pipe.query_async::<(bool, Option<String>)>(&mut redis);
        let (known, at) = tokio::time::timeout(CALL_TIMEOUT * 2, lookup)
            .await
            .map_err(|_| Unreachable::new("no answer in time"))??;
        Ok(match (known, at) {
            (false, _) => Whereabouts::Unknown,
            (true, None) => Whereabouts::Offline,
            (true, Some(node)) => Whereabouts::At(node),
        })
    }

    /// Adds what a relay's own file knows of `id` (its binding, the keys
    /// released from it) where the directory has nothing.
    pub async fn import(
        &self,
        id: &ComputerId,
        key: Option<&[u8]>,
        released: &[Vec<u8>],
    ) -> Result<Imported, Unreachable> {
        let mut args = vec![key.map(encode).unwrap_or_default()];
        args.extend(released.iter().map(|k| encode(k)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let outcome: String = self.run(&self.import, id, &args).await?;
        Ok(match outcome.as_str() {
            "added" => Imported::Added,
            "same" => Imported::AlreadyThere,
            "released" => Imported::Released,
            "other" => Imported::HeldByAnother,
            "conflict" => Imported::Conflict,
            other => return Err(Unreachable::odd(other)),
        })
    }

    /// Marks (again) that this node is importing its file, for
    /// [`IMPORT_MARK`]: no node binds a new ID meanwhile.
    pub async fn importing(&self) -> Result<(), Unreachable> {
        let mut redis = self.redis.clone();
        let ms = IMPORT_MARK.as_millis() as u64;
        let mut set = redis::cmd("SET");
        set.arg(IMPORTING).arg(&self.node).arg("PX").arg(ms);
        let set = set.query_async::<()>(&mut redis);
        tokio::time::timeout(CALL_TIMEOUT * 2, set)
            .await
            .map_err(|_| Unreachable::new("no answer in time"))??;
        Ok(())
    }

    /// This node's import is over: new IDs may be bound again.
    pub async fn imported(&self) -> Result<(), Unreachable> {
        let any = ComputerId::parse("import").expect("a valid ID");
        let _: i64 = self.run(&self.import_done, &any, &[&self.node]).await?;
        Ok(())
    }

    /// Whether the directory still has the note of an import made as `note`.
    pub async fn has_import(&self, note: &str) -> Result<bool, Unreachable> {
        let mut redis = self.redis.clone();
        let mut exists = redis::cmd("EXISTS");
        exists.arg(format!("thin:imported:{note}"));
        let exists = exists.query_async::<bool>(&mut redis);
        Ok(tokio::time::timeout(CALL_TIMEOUT * 2, exists)
            .await
            .map_err(|_| Unreachable::new("no answer in time"))??)
    }

    /// Notes that a node's file is in the directory, as `note`.
    pub async fn note_import(&self, note: &str) -> Result<(), Unreachable> {
        let mut redis = self.redis.clone();
        let mut set = redis::cmd("SET");
        set.arg(format!("thin:imported:{note}")).arg(&self.node);
        let set = set.query_async::<()>(&mut redis);
        tokio::time::timeout(CALL_TIMEOUT * 2, set)
            .await
            .map_err(|_| Unreachable::new("no answer in time"))??;
        Ok(())
    }

    /// Releases `id` from its key (which may not claim it again); the key
    /// it was bound to, if any.
    pub async fn unbind(&self, id: &ComputerId) -> Result<Option<Vec<u8>>, Unreachable> {
        let key: Option<String> = self.run(&self.unbind, id, &[]).await?;
        key.map(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .map_err(|e| Unreachable::new(format!("a malformed key in the directory: {e}")))
        })
        .transpose()
    }
}
