-- A delivery is also recognised by the SHA-256 of its raw body: X-GitHub-Delivery is not signed,
-- so a captured delivery replayed under a new id must still be refused. Rows from before have none.
ALTER TABLE "github_webhook_deliveries" ADD COLUMN "body_sha256" CHAR(64);

-- CreateIndex
CREATE UNIQUE INDEX "github_webhook_deliveries_body_sha256_key" ON "github_webhook_deliveries"("body_sha256");
