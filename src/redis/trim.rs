//! Opt-in trimming that never deletes an entry a consumer group still needs.

/// What [`trim_below_pending`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrimReport {
    /// The `MINID` the stream was trimmed to (`None`: nothing was trimmed because the
    /// stream does not exist or has no consumer group).
    pub min_id: Option<String>,
    /// How many entries were deleted.
    pub trimmed: u64,
}

// One script, so that reading the groups and trimming are atomic: no entry can become
// pending (or a group appear) between the computation and the XTRIM.
//
// For each group the lowest entry it still needs is its oldest pending entry (XPENDING's
// summary), or, with nothing pending, its last-delivered id (kept, although delivered and
// acknowledged: MINID keeps ids >= the bound, and keeping one more entry avoids computing
// a successor id). The stream is trimmed to the lowest bound over all groups. No group:
// nothing is known to be consumed, so nothing is trimmed.
const SCRIPT: &str = r"
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'', 0} end
local groups = redis.call('XINFO', 'GROUPS', key)
if #groups == 0 then return {'', 0} end
local best, best_ms, best_seq = nil, nil, nil
for _, g in ipairs(groups) do
  local name, pending, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1]
    elseif g[i] == 'pending' then pending = g[i + 1]
    elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local bound = last
  if pending > 0 then
    bound = redis.call('XPENDING', key, name)[2]
  end
  local dash = string.find(bound, '-', 1, true)
  local ms = tonumber(string.sub(bound, 1, dash - 1))
  local seq = tonumber(string.sub(bound, dash + 1))
  if best == nil or ms < best_ms or (ms == best_ms and seq < best_seq) then
    best, best_ms, best_seq = bound, ms, seq
  end
end
local trimmed = redis.call('XTRIM', key, 'MINID', best)
return {best, trimmed}
";

/// Trims `stream` with `XTRIM MINID` below the oldest entry that any of its consumer
/// groups still needs: its oldest pending entry, or, when nothing is pending, its last
/// delivered one. Entries pending in a group (delivered, not acknowledged) and entries not
/// yet delivered to every group are never deleted, so at-least-once holds (unlike
/// `MAXLEN ~`, which deletes by count whatever is pending). Runs as one script, so it is
/// atomic on the server. A stream without groups is left alone.
///
/// A group created later with a start id below the bound will not see the trimmed
/// entries. The dead-letter stream is never trimmed here.
///
/// # Errors
///
/// The server's error.
pub fn trim_below_pending(
    conn: &mut ::redis::Connection,
    stream: &str,
) -> Result<TrimReport, ::redis::RedisError> {
    let (min_id, trimmed): (String, u64) = ::redis::cmd("EVAL")
        .arg(SCRIPT)
        .arg(1)
        .arg(stream)
        .query(conn)?;
    Ok(TrimReport {
        min_id: (!min_id.is_empty()).then_some(min_id),
        trimmed,
    })
}
