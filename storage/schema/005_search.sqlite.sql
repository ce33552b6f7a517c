-- Full-text search over message bodies, room names and topics (SQLite: FTS5).
-- The rowid of each row is the event's stream_ordering, which joins it to `events` and lets a
-- redaction delete it by rowid. The porter tokenizer stems English words, as PostgreSQL's
-- 'english' configuration does, so both engines match "running" to "run".
CREATE VIRTUAL TABLE event_search USING fts5(key UNINDEXED, value, tokenize = 'porter unicode61');

-- Events persisted before 005.
INSERT INTO event_search (rowid, key, value)
SELECT e.stream_ordering,
       CASE e.type WHEN 'm.room.message' THEN 'content.body'
                   WHEN 'm.room.name' THEN 'content.name' ELSE 'content.topic' END,
       CASE e.type WHEN 'm.room.message' THEN json_extract(e.json, '$.content.body')
                   WHEN 'm.room.name' THEN json_extract(e.json, '$.content.name')
                   ELSE json_extract(e.json, '$.content.topic') END
FROM events e
WHERE e.stream_ordering IS NOT NULL AND e.rejected_reason IS NULL
  AND ((e.type = 'm.room.message' AND json_type(e.json, '$.content.body') = 'text')
       OR (e.type = 'm.room.name' AND json_type(e.json, '$.content.name') = 'text')
       OR (e.type = 'm.room.topic' AND json_type(e.json, '$.content.topic') = 'text'))
  AND NOT EXISTS (SELECT 1 FROM redactions rd WHERE rd.redacts = e.event_id);
