-- Tenants: owners, the accounts they sign in with, their API tokens, server-side sessions,
-- one-time sign-in links and used connect/sign-in states.

-- CreateTable
CREATE TABLE "owners" (
    "id" UUID NOT NULL,
    "display_name" VARCHAR(255),
    "avatar_url" VARCHAR(2000),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "owners_pkey" PRIMARY KEY ("id")
);

-- Every owner id already in use becomes an owner, before the foreign keys below need them.
INSERT INTO "owners" ("id")
SELECT "owner_id" FROM "towns"
UNION
SELECT "owner_id" FROM "platform_integrations";

-- CreateTable
CREATE TABLE "owner_identities" (
    "id" UUID NOT NULL,
    "owner_id" UUID NOT NULL,
    "provider" "Provider" NOT NULL,
    "origin" VARCHAR(500) NOT NULL,
    "provider_user_id" BIGINT NOT NULL,
    "login" VARCHAR(255) NOT NULL,
    "user_token_enc" TEXT,
    "user_token_expires_at" TIMESTAMPTZ(3),
    "refresh_token_enc" TEXT,
    "refresh_token_expires_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "owner_identities_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "owner_api_tokens" (
    "id" UUID NOT NULL,
    "owner_id" UUID NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "token_hash" CHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),

    CONSTRAINT "owner_api_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sessions" (
    "id" UUID NOT NULL,
    "token_hash" CHAR(64) NOT NULL,
    "owner_id" UUID,
    "admin_fingerprint" CHAR(64),
    "user_agent" VARCHAR(500),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sign_in_links" (
    "id" UUID NOT NULL,
    "token_hash" CHAR(64) NOT NULL,
    "owner_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),

    CONSTRAINT "sign_in_links_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "used_states" (
    "nonce" VARCHAR(64) NOT NULL,
    "used_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "used_states_pkey" PRIMARY KEY ("nonce")
);

-- CreateIndex
CREATE INDEX "owner_identities_owner_id_idx" ON "owner_identities"("owner_id");

-- CreateIndex
CREATE UNIQUE INDEX "owner_identities_provider_origin_provider_user_id_key" ON "owner_identities"("provider", "origin", "provider_user_id");

-- CreateIndex
CREATE UNIQUE INDEX "owner_api_tokens_token_hash_key" ON "owner_api_tokens"("token_hash");

-- CreateIndex
CREATE INDEX "owner_api_tokens_owner_id_idx" ON "owner_api_tokens"("owner_id");

-- CreateIndex
CREATE UNIQUE INDEX "sessions_token_hash_key" ON "sessions"("token_hash");

-- CreateIndex
CREATE INDEX "sessions_owner_id_idx" ON "sessions"("owner_id");

-- CreateIndex
CREATE INDEX "sessions_expires_at_idx" ON "sessions"("expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "sign_in_links_token_hash_key" ON "sign_in_links"("token_hash");

-- CreateIndex
CREATE INDEX "sign_in_links_expires_at_idx" ON "sign_in_links"("expires_at");

-- CreateIndex
CREATE INDEX "used_states_expires_at_idx" ON "used_states"("expires_at");

-- AddForeignKey
ALTER TABLE "towns" ADD CONSTRAINT "towns_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "owners"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "platform_integrations" ADD CONSTRAINT "platform_integrations_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "owners"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "owner_identities" ADD CONSTRAINT "owner_identities_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "owners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "owner_api_tokens" ADD CONSTRAINT "owner_api_tokens_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "owners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "owners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sign_in_links" ADD CONSTRAINT "sign_in_links_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "owners"("id") ON DELETE CASCADE ON UPDATE CASCADE;
