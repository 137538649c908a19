-- CreateEnum
CREATE TYPE "Provider" AS ENUM ('github', 'gitlab');

-- CreateEnum
CREATE TYPE "GithubAppType" AS ENUM ('standard', 'lite');

-- CreateEnum
CREATE TYPE "IntegrationStatus" AS ENUM ('active', 'suspended', 'deleted', 'reconnect_required');

-- CreateEnum
CREATE TYPE "CredentialSource" AS ENUM ('integration', 'town_git_auth', 'none');

-- CreateEnum
CREATE TYPE "DispatchStatus" AS ENUM ('starting', 'active', 'degraded', 'credential_error', 'stopped', 'container_unreachable');

-- CreateEnum
CREATE TYPE "TokenEventKind" AS ENUM ('minted', 'pushed', 'push_failed', 'pulled', 'refresh_failed', 'revoked');

-- CreateTable
CREATE TABLE "towns" (
    "id" UUID NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "owner_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "towns_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "town_git_auth" (
    "id" UUID NOT NULL,
    "town_id" UUID NOT NULL,
    "host" VARCHAR(255) NOT NULL,
    "username" VARCHAR(255),
    "token_enc" TEXT NOT NULL,
    "fingerprint" VARCHAR(80) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "town_git_auth_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "platform_integrations" (
    "id" UUID NOT NULL,
    "owner_id" UUID NOT NULL,
    "provider" "Provider" NOT NULL,
    "status" "IntegrationStatus" NOT NULL DEFAULT 'active',
    "status_reason" TEXT,
    "status_changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "account_login" VARCHAR(255),
    "account_id" BIGINT,
    "github_installation_id" BIGINT,
    "github_app_type" "GithubAppType",
    "gitlab_base_url" VARCHAR(500),
    "access_token_enc" TEXT,
    "refresh_token_enc" TEXT,
    "access_token_expires_at" TIMESTAMPTZ(3),
    "token_version" INTEGER NOT NULL DEFAULT 0,
    "repositories" JSONB NOT NULL DEFAULT '[]',
    "repositories_synced_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "platform_integrations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "gastown_rigs" (
    "id" UUID NOT NULL,
    "town_id" UUID NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "git_url" VARCHAR(2000) NOT NULL,
    "default_branch" VARCHAR(255) NOT NULL,
    "platform_integration_id" UUID,
    "repository_id" BIGINT,
    "repository_full_name" VARCHAR(500),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "gastown_rigs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "agent_dispatches" (
    "id" UUID NOT NULL,
    "rig_id" UUID NOT NULL,
    "container_url" VARCHAR(2000) NOT NULL,
    "container_token_hash" CHAR(64) NOT NULL,
    "container_token_enc" TEXT NOT NULL,
    "workflow_id" VARCHAR(200) NOT NULL,
    "status" "DispatchStatus" NOT NULL DEFAULT 'starting',
    "credential_source" "CredentialSource" NOT NULL DEFAULT 'none',
    "generation" INTEGER NOT NULL DEFAULT 0,
    "token_expires_at" TIMESTAMPTZ(3),
    "refreshed_at" TIMESTAMPTZ(3),
    "last_error_code" VARCHAR(80),
    "last_error_message" TEXT,
    "last_error_at" TIMESTAMPTZ(3),
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ended_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "agent_dispatches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "token_leases" (
    "dispatch_id" UUID NOT NULL,
    "generation" INTEGER NOT NULL,
    "credential_source" "CredentialSource" NOT NULL,
    "token_enc" TEXT,
    "previous_token_enc" TEXT,
    "previous_expires_at" TIMESTAMPTZ(3),
    "username" VARCHAR(255) NOT NULL,
    "fingerprint" VARCHAR(80) NOT NULL,
    "expires_at" TIMESTAMPTZ(3),
    "integration_id" UUID,
    "mint_key" VARCHAR(200) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "token_leases_pkey" PRIMARY KEY ("dispatch_id")
);

-- CreateTable
CREATE TABLE "token_events" (
    "id" BIGSERIAL NOT NULL,
    "dispatch_id" UUID NOT NULL,
    "kind" "TokenEventKind" NOT NULL,
    "source" "CredentialSource" NOT NULL,
    "generation" INTEGER NOT NULL,
    "fingerprint" VARCHAR(80),
    "expires_at" TIMESTAMPTZ(3),
    "detail" TEXT,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "token_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "towns_owner_id_idx" ON "towns"("owner_id");

-- CreateIndex
CREATE UNIQUE INDEX "town_git_auth_town_id_host_key" ON "town_git_auth"("town_id", "host");

-- CreateIndex
CREATE UNIQUE INDEX "platform_integrations_github_installation_id_key" ON "platform_integrations"("github_installation_id");

-- CreateIndex
CREATE INDEX "platform_integrations_owner_id_idx" ON "platform_integrations"("owner_id");

-- CreateIndex
CREATE UNIQUE INDEX "platform_integrations_gitlab_account_key" ON "platform_integrations"("owner_id", "provider", "gitlab_base_url", "account_id");

-- CreateIndex
CREATE INDEX "gastown_rigs_platform_integration_id_idx" ON "gastown_rigs"("platform_integration_id");

-- CreateIndex
CREATE UNIQUE INDEX "gastown_rigs_town_id_name_key" ON "gastown_rigs"("town_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "agent_dispatches_container_token_hash_key" ON "agent_dispatches"("container_token_hash");

-- CreateIndex
CREATE UNIQUE INDEX "agent_dispatches_workflow_id_key" ON "agent_dispatches"("workflow_id");

-- CreateIndex
CREATE INDEX "agent_dispatches_rig_id_idx" ON "agent_dispatches"("rig_id");

-- CreateIndex
CREATE INDEX "agent_dispatches_status_idx" ON "agent_dispatches"("status");

-- CreateIndex
CREATE INDEX "token_leases_integration_id_idx" ON "token_leases"("integration_id");

-- CreateIndex
CREATE INDEX "token_events_dispatch_id_at_idx" ON "token_events"("dispatch_id", "at");

-- AddForeignKey
ALTER TABLE "town_git_auth" ADD CONSTRAINT "town_git_auth_town_id_fkey" FOREIGN KEY ("town_id") REFERENCES "towns"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "gastown_rigs" ADD CONSTRAINT "gastown_rigs_town_id_fkey" FOREIGN KEY ("town_id") REFERENCES "towns"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "gastown_rigs" ADD CONSTRAINT "gastown_rigs_platform_integration_id_fkey" FOREIGN KEY ("platform_integration_id") REFERENCES "platform_integrations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "agent_dispatches" ADD CONSTRAINT "agent_dispatches_rig_id_fkey" FOREIGN KEY ("rig_id") REFERENCES "gastown_rigs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "token_leases" ADD CONSTRAINT "token_leases_dispatch_id_fkey" FOREIGN KEY ("dispatch_id") REFERENCES "agent_dispatches"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "token_events" ADD CONSTRAINT "token_events_dispatch_id_fkey" FOREIGN KEY ("dispatch_id") REFERENCES "agent_dispatches"("id") ON DELETE CASCADE ON UPDATE CASCADE;
