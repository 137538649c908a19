-- GitHub installation tokens whose revocation GitHub failed outside a stop, retried by the workers
-- until GitHub confirms it or the token has expired. The token is kept encrypted; its SHA-256 keeps
-- one row per token.
CREATE TABLE "pending_revocations" (
    "id" UUID NOT NULL,
    "token_sha256" CHAR(64) NOT NULL,
    "token_enc" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "dispatch_id" UUID,
    "reason" VARCHAR(200) NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_error" VARCHAR(80),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pending_revocations_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "pending_revocations_token_sha256_key" ON "pending_revocations"("token_sha256");
CREATE INDEX "pending_revocations_next_attempt_at_idx" ON "pending_revocations"("next_attempt_at");
