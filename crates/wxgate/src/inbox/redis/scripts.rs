//! The keys of the Redis inbox and the Lua scripts that change them: every step that
//! touches more than one key is one script, so it is atomic in Redis.

use redis::Script;

use crate::inbox::record::DeliveryState;

pub(super) const RECORDS: &str = "wxgate:inbox:records";
pub(super) const NEXT_ID: &str = "wxgate:inbox:next_id";
pub(super) const ALL: &str = "wxgate:inbox:all";
pub(super) const QUEUE: &str = "wxgate:inbox:queue";
pub(super) const GROUP: &str = "wxgate";

pub(super) fn state_key(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "wxgate:inbox:state:pending",
        DeliveryState::Delivered => "wxgate:inbox:state:delivered",
        DeliveryState::Dead => "wxgate:inbox:state:dead",
    }
}

pub(super) fn dedup_redis_key(account: &str, key: &str) -> String {
    format!("wxgate:inbox:dedup:{account}:{key}")
}

/// Creates the stream and its group when Redis lost them (a restart without
/// persistence); `KEYS[1]` is always the queue.
const ENSURE_GROUP: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'wxgate', '0', 'MKSTREAM')
end
"#;

/// KEYS: queue, dedup, next_id, records, pending, all. ARGV: consumer, record JSON
/// starting with `{"id":0,`. Returns {0, existing JSON, ""} for a retry, or
/// {1, new JSON, stream id}.
const ACCEPT: &str = r#"
local existing = redis.call('GET', KEYS[2])
if existing then
  local record = redis.call('HGET', KEYS[4], existing)
  if record then return {0, record, ''} end
end
local id = redis.call('INCR', KEYS[3])
local json = '{"id":' .. id .. string.sub(ARGV[2], 8)
redis.call('HSET', KEYS[4], id, json)
redis.call('SET', KEYS[2], id)
redis.call('ZADD', KEYS[5], id, id)
redis.call('ZADD', KEYS[6], id, id)
local sid = redis.call('XADD', KEYS[1], '*', 'id', id)
redis.call('XREADGROUP', 'GROUP', 'wxgate', ARGV[1], 'COUNT', 1000, 'STREAMS', KEYS[1], '>')
return {1, json, sid}
"#;

/// KEYS: queue, records, pending, delivered, dead. ARGV: id, JSON, state, stream id
/// (or ""), consumer (or "" to leave the queue alone). With a consumer and no stream
/// id, the record is queued again (a manual retry) and the new stream id returned.
const UPDATE: &str = r#"
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local target = {pending = KEYS[3], delivered = KEYS[4], dead = KEYS[5]}
redis.call('ZADD', target[ARGV[3]], ARGV[1], ARGV[1])
if ARGV[3] ~= 'pending' then
  if ARGV[4] ~= '' then
    redis.call('XACK', KEYS[1], 'wxgate', ARGV[4])
    redis.call('XDEL', KEYS[1], ARGV[4])
  end
  return ''
end
if ARGV[5] ~= '' and ARGV[4] == '' then
  local sid = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
  redis.call('XREADGROUP', 'GROUP', 'wxgate', ARGV[5], 'COUNT', 1000, 'STREAMS', KEYS[1], '>')
  return sid
end
return ARGV[4]
"#;

/// KEYS: queue. ARGV: consumer, count, start (`-` or `(id`). Claims a page of this
/// consumer's own pending entries again, which restarts their idle time. Returns the
/// last pending id of the page, the page's size and the claimed entries.
const HEARTBEAT: &str = r#"
local mine = redis.call('XPENDING', KEYS[1], 'wxgate', ARGV[3], '+', ARGV[2], ARGV[1])
if #mine == 0 then return {'', 0, {}} end
local ids = {}
for i, entry in ipairs(mine) do ids[i] = entry[1] end
return {ids[#ids], #ids, redis.call('XCLAIM', KEYS[1], 'wxgate', ARGV[1], 0, unpack(ids))}
"#;

/// KEYS: queue. ARGV: consumer, min idle ms, start, count.
const RECLAIM: &str = r#"
return redis.call('XAUTOCLAIM', KEYS[1], 'wxgate', ARGV[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
"#;

/// KEYS: queue. ARGV: min idle ms, own consumer. Forgets consumers with nothing
/// pending that have been silent for longer than the idle time.
const FORGET_CONSUMERS: &str = r#"
local forgotten = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], 'wxgate')) do
  local fields = {}
  for i = 1, #consumer, 2 do fields[consumer[i]] = consumer[i + 1] end
  if fields['pending'] == 0 and fields['idle'] > tonumber(ARGV[1]) and fields['name'] ~= ARGV[2] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'wxgate', fields['name'])
    forgotten = forgotten + 1
  end
end
return forgotten
"#;

/// KEYS: pending, delivered, dead.
const COUNTS: &str = r#"
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])}
"#;

/// KEYS: records, delivered, dead, all, dedup. ARGV: id.
const DELETE: &str = r#"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
return 1
"#;

/// A script that works on the queue, which it first makes sure exists.
fn queue_script(body: &str) -> Script {
    Script::new(&format!("{ENSURE_GROUP}{body}"))
}

/// The scripts of one queue, prepared once.
pub(super) struct Scripts {
    pub(super) accept: Script,
    pub(super) update: Script,
    pub(super) heartbeat: Script,
    pub(super) reclaim: Script,
    pub(super) forget: Script,
    pub(super) counts: Script,
    pub(super) delete: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            accept: queue_script(ACCEPT),
            update: queue_script(UPDATE),
            heartbeat: queue_script(HEARTBEAT),
            reclaim: queue_script(RECLAIM),
            forget: Script::new(FORGET_CONSUMERS),
            counts: Script::new(COUNTS),
            delete: Script::new(DELETE),
        }
    }
}
