-- Up Migration
-- The result files a part's status reads name (OpenAI's output and error files, Gemini's responses file), so
-- deleting them after the handler (activities/delete-provider-files.ts) needs no further status read: that read was
-- one provider call per batch beyond its polls and the results download. Null until a read names them.
ALTER TABLE provider_batches ADD COLUMN result_file_ids text[];

-- Down Migration
ALTER TABLE provider_batches DROP COLUMN result_file_ids;
