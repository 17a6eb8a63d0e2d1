-- Up Migration
-- Provider files: the input file a part was submitted with (what the provider's batch object may not say: Gemini),
-- and when the part's files (input, output, error) were deleted at the provider after its results were stored.
ALTER TABLE provider_batches
  ADD COLUMN input_file_id    text,
  ADD COLUMN files_deleted_at timestamptz;

-- The batch's endpoint (chat completions, Responses, embeddings), validated per provider; null: the provider's default.
ALTER TABLE batches ADD COLUMN endpoint text;

-- Down Migration
ALTER TABLE batches DROP COLUMN endpoint;
ALTER TABLE provider_batches DROP COLUMN input_file_id, DROP COLUMN files_deleted_at;
