-- SQLite's LIKE is ASCII-case-insensitive, so it uses an index for `term LIKE 'abc%'` only when
-- the index has the NOCASE collation. Terms are stored casefolded, so NOCASE changes nothing else.
CREATE INDEX user_directory_terms_prefix ON user_directory_terms (term COLLATE NOCASE);
