-- Relations of events persisted before 004: read m.relates_to out of the stored JSON.
-- (The file name sorts after 004_relations.sql, which creates the tables.)

INSERT INTO event_relations (event_id, relates_to_id, rel_type, aggregation_key, room_id, sender,
                             type, stream_ordering)
SELECT e.event_id,
       json_extract(e.json, '$.content."m.relates_to".event_id'),
       json_extract(e.json, '$.content."m.relates_to".rel_type'),
       CASE WHEN json_extract(e.json, '$.content."m.relates_to".rel_type') = 'm.annotation'
            THEN json_extract(e.json, '$.content."m.relates_to".key') END,
       e.room_id, e.sender, e.type, e.stream_ordering
FROM events e
WHERE e.stream_ordering IS NOT NULL AND e.rejected_reason IS NULL
  AND json_type(e.json, '$.content."m.relates_to".event_id') = 'text'
  AND json_type(e.json, '$.content."m.relates_to".rel_type') = 'text'
  AND NOT EXISTS (SELECT 1 FROM redactions rd WHERE rd.redacts = e.event_id);

INSERT INTO threads (room_id, thread_id, latest_event_id, latest_stream_ordering)
SELECT r.room_id, r.relates_to_id, r.event_id, r.stream_ordering
FROM event_relations r
WHERE r.rel_type = 'm.thread'
  AND r.stream_ordering = (SELECT MAX(r2.stream_ordering) FROM event_relations r2
                           WHERE r2.relates_to_id = r.relates_to_id AND r2.room_id = r.room_id
                             AND r2.rel_type = 'm.thread');
