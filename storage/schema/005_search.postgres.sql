-- Full-text search over message bodies, room names and topics (PostgreSQL: tsvector + GIN).
-- Keyed by the event's stream_ordering, which joins it to `events`.
CREATE TABLE event_search (
    stream_ordering BIGINT PRIMARY KEY,
    key TEXT NOT NULL,
    vector TSVECTOR NOT NULL
);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);

-- Events persisted before 005.
INSERT INTO event_search (stream_ordering, key, vector)
SELECT e.stream_ordering,
       CASE e.type WHEN 'm.room.message' THEN 'content.body'
                   WHEN 'm.room.name' THEN 'content.name' ELSE 'content.topic' END,
       to_tsvector('english', CASE e.type
                   WHEN 'm.room.message' THEN e.json::jsonb #>> '{content,body}'
                   WHEN 'm.room.name' THEN e.json::jsonb #>> '{content,name}'
                   ELSE e.json::jsonb #>> '{content,topic}' END)
FROM events e
WHERE e.stream_ordering IS NOT NULL AND e.rejected_reason IS NULL
  AND ((e.type = 'm.room.message' AND jsonb_typeof(e.json::jsonb #> '{content,body}') = 'string')
       OR (e.type = 'm.room.name' AND jsonb_typeof(e.json::jsonb #> '{content,name}') = 'string')
       OR (e.type = 'm.room.topic' AND jsonb_typeof(e.json::jsonb #> '{content,topic}') = 'string'))
  AND NOT EXISTS (SELECT 1 FROM redactions rd WHERE rd.redacts = e.event_id);
