-- PostgreSQL uses a btree index for `term LIKE 'abc%'` under any database collation only with
-- the pattern operator class.
CREATE INDEX user_directory_terms_prefix ON user_directory_terms (term text_pattern_ops);
