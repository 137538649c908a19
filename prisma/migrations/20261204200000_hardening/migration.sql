-- A delivery is also recognised by the SHA-256 of its raw body: X-GitHub-Delivery is not signed,
-- so a captured delivery replayed under a new id must still be refused. Rows from before have none.
ALTER TABLE "github_webhook_deliveries" ADD COLUMN "body_sha256" CHAR(64);

-- CreateIndex
CREATE UNIQUE INDEX "github_webhook_deliveries_body_sha256_key" ON "github_webhook_deliveries"("body_sha256");

-- Events are paged by id within a dispatch, and the retention sweep finds old `pulled` rows by time.
CREATE INDEX "token_events_dispatch_id_id_idx" ON "token_events"("dispatch_id", "id");
CREATE INDEX "token_events_kind_at_idx" ON "token_events"("kind", "at");

-- API instances cache unknown container-token hashes briefly; a new dispatch tells them to forget.
CREATE FUNCTION "repo_connect_dispatch_created"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('repo_connect_dispatch_created', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER "agent_dispatches_created" AFTER INSERT ON "agent_dispatches"
  FOR EACH STATEMENT EXECUTE FUNCTION "repo_connect_dispatch_created"();
